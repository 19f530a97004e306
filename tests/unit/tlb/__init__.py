"""Unit tests of the tlb component's sans-IO cores."""

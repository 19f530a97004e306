"""The registrar ("userdata"): the platform's users and their digest
credentials (:mod:`.users`), the location service of RFC 3261 §10 as a
sans-IO table (:mod:`.bindings`), and the base application that serves both
to the other components and keeps the store in step (:mod:`.service`)."""

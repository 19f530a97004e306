"""Two real softphones (baresip) call each other through the platform and
hear each other: 1001 plays a 700 Hz test tone from a WAV file, the call is
answered by 1002 automatically, and 1002's recording of what it received
holds that tone.  Both sides see the end, the CDR is written and every media
port of the SIP server is free again."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers.process import free_port
from helpers.sipserver import read_cdrs, sip_server_platform
from helpers.tools import require_tool

from telavox.audio import read_wav, write_wav

pytestmark = pytest.mark.integration
DOMAIN = "baresip.example.test"
PASSWORDS = {"1001": "pw-1001-bs", "1002": "pw-1002-bs"}
RTP_LOW, RTP_HIGH = 31400, 31499
TONE_HZ = 700


def _port_pair() -> int:
    """A port free for baresip's UDP/TCP listener and its TLS one (+1)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair")


def _baresip_config(folder: Path, user: str, proxy_port: int, source: str,
                    answer: bool) -> Path:
    home = folder / user
    (home / "dump").mkdir(parents=True)
    mode = ";answermode=auto" if answer else ""
    (home / "accounts").write_text(
        f"<sip:{user}@{DOMAIN};transport=udp>;auth_pass={PASSWORDS[user]};"
        f"outbound=\"sip:127.0.0.1:{proxy_port};lr\";regint=60{mode}\n")
    (home / "config").write_text(
        f"sip_listen 127.0.0.1:{_port_pair()}\nnet_interface 127.0.0.1\n"
        "module_path /usr/lib/baresip/modules\n"
        "module g711.so\nmodule aufile.so\nmodule aubridge.so\nmodule sndfile.so\n"
        "module_app account.so\nmodule_app menu.so\n"
        f"audio_player aubridge,out{user}\naudio_source {source}\n"
        "ausrc_srate 8000\nauplay_srate 8000\nausrc_channels 1\nauplay_channels 1\n"
        f"snd_path {home / 'dump'}\nrtp_ports 22000-22999\n")
    (home / "contacts").write_text("")
    return home


def _power_at(samples: np.ndarray, rate: int, hz: float) -> float:
    x = samples.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    band = (freqs > hz - 20) & (freqs < hz + 20)
    return float(spectrum[band].sum() / spectrum.sum())


def test_two_baresips_hear_each_other(tmp_path: Path) -> None:
    """1001 → 1002 with real softphones: the tone 1001 sends arrives at 1002
    through the mediaserver, the call ends on both sides, CDR answered, no
    media port left open."""
    baresip = require_tool("baresip", "baresip-core")
    proxy_port = free_port()
    platform = sip_server_platform(tmp_path, domain=DOMAIN, passwords=PASSWORDS,
                                   proxy_port=proxy_port, rtp_ports=(RTP_LOW, RTP_HIGH))
    tone = tmp_path / "tone.wav"
    t = np.arange(8000 * 6) / 8000
    write_wav(str(tone), (np.sin(2 * np.pi * TONE_HZ * t) * 8000).astype(np.int16), 8000)
    caller_home = _baresip_config(tmp_path, "1001", proxy_port, f"aufile,{tone}", False)
    callee_home = _baresip_config(tmp_path, "1002", proxy_port, "aubridge,silence", True)
    platform.start()
    callee = caller = None
    try:
        offset = len(platform.log())
        callee = subprocess.Popen(["timeout", "30", baresip, "-f", str(callee_home),
                                   "-t", "20"], cwd=tmp_path, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
        platform.wait_for_log(f"sip:1002@{DOMAIN}: registered", timeout=15, after=offset)
        caller = subprocess.Popen(["timeout", "30", baresip, "-f", str(caller_home),
                                   "-t", "10", "-e", f"/dial sip:1002@{DOMAIN}"],
                                  cwd=tmp_path, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
        caller_out, _ = caller.communicate(timeout=40)
        platform.wait_for_log("ended: answered", timeout=15, after=offset)
        # the mediaserver closed every port of the call (the platform still runs)
        for port in range(RTP_LOW, RTP_HIGH + 1):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind(("127.0.0.1", port))
        callee.terminate()
        callee_out, _ = callee.communicate(timeout=20)
    finally:
        for proc in (caller, callee):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()
        platform.stop()
    caller_text = caller_out.decode(errors="replace")
    callee_text = callee_out.decode(errors="replace")
    assert "Call established" in caller_text, caller_text
    assert "terminated" in caller_text, caller_text
    assert "terminated" in callee_text, callee_text
    [received] = list((callee_home / "dump").glob("*-dec.wav"))
    samples, rate = read_wav(str(received))
    assert rate == 8000
    assert len(samples) > 8000, "less than a second of audio reached 1002"
    assert _power_at(samples, rate, TONE_HZ) > 0.5, "the tone is not what 1002 heard"
    rows = read_cdrs(tmp_path)
    assert [(r["caller"], r["callee"], r["disposition"]) for r in rows] == [
        ("1001", "1002", "answered")]
    log = platform.log()
    assert "Traceback" not in log, log

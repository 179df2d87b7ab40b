"""Seeds for the fuzzers: every packet a real gdb or lldb sent in the recorded sessions.

The logs live in ../shared/rsp-transcripts/ (next to the repository) or wherever
GDBSTUB_TRANSCRIPTS points; without them the fuzzers still run on their own
generated packets and on the few built-in seeds below.
"""

from __future__ import annotations

import os
import random
import re
from functools import cache
from pathlib import Path

from gdbstub.protocol.session import packet_name

ROOT = Path(__file__).resolve().parent.parent
FUZZ = bool(os.environ.get("GDBSTUB_FUZZ"))  # `make fuzz`: the long runs

# One line per packet: gdb's `set debug remote 1` and lldb's `log enable gdb-remote packets`.
_SENT = re.compile(r"(?:Sending packet|send packet): \$(.*)#[0-9a-fA-F]{2}\s*$")
_CUT = re.compile(r"\s*\.\.\.\(\d+ chars\)$")

BUILTIN = [
    b"?", b"g", b"qSupported:multiprocess+;swbreak+;hwbreak+", b"m401000,40", b"M401000,4:90909090",
    b"X401000,2:\x90\x90", b"Z0,401000,1", b"z0,401000,1", b"p10", b"P10=0000000000000000",
    b"Hgp1.1", b"Hc-1", b"vCont?", b"vCont;s:p1.1;c", b"qXfer:features:read:target.xml:0,1000",
    b"qfThreadInfo", b"T1", b"qAttached:1", b"QPassSignals:e;14", b"qRcmd,68656c70",
]


def transcript_dirs() -> list[Path]:
    env = os.environ.get("GDBSTUB_TRANSCRIPTS")
    dirs = [Path(env)] if env else []
    dirs += [ROOT.parent / "shared" / "rsp-transcripts", Path("/work/shared/rsp-transcripts")]
    return [d for d in dirs if d.is_dir()]


@cache
def client_packets() -> tuple[bytes, ...]:
    """Payloads (unescaped as logged) of every packet a client sent, deduplicated, in log order."""
    seen: dict[bytes, None] = {}
    for directory in transcript_dirs()[:1]:
        for log in sorted(directory.glob("*.log")):
            for line in log.read_text(errors="replace").splitlines():
                line = _CUT.sub("", line)
                found = _SENT.search(line)
                if found is None:
                    # A cut line has no checksum left: keep what there is of the payload.
                    head = re.search(r"(?:Sending packet|send packet): \$(.*)", line)
                    if head is None:
                        continue
                    payload = head.group(1)
                else:
                    payload = found.group(1)
                seen.setdefault(payload.encode("latin-1", "replace"), None)
    for packet in BUILTIN:
        seen.setdefault(packet, None)
    return tuple(seen)


def mutate(data: bytes, rng: random.Random, rounds: int) -> bytes:
    """Flip, insert, delete, duplicate or truncate bytes, as a damaged line or a buggy client would."""
    buf = bytearray(data)
    for _ in range(rounds):
        op = rng.randrange(6)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            buf[pos % len(buf)] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[pos:pos] = bytes([rng.choice(b"$#}*+-\x03\x00\xff0a")])
        elif op == 2 and buf:
            del buf[pos % len(buf)]
        elif op == 3:
            buf[pos:pos] = buf[pos : pos + rng.randrange(1, 16)]
        elif op == 4:
            del buf[pos:]
        else:
            buf[pos:pos] = rng.randbytes(rng.randrange(1, 8))
    return bytes(buf)


# Packets that reach outside the session's own process, so a fuzzer must not send them at random:
# starting or attaching other programs, host files opened for writing or removed, monitor commands
# that end the stub or change its logging, and non-stop mode (another resume model).
DENIED_NAMES = {"vRun", "R", "vAttach", "!"}
SAFE_VFILE = {b"setfs", b"pread", b"close", b"fstat", b"stat", b"readlink"}


def allowed(packet: bytes) -> bool:
    if not packet:
        return True
    name = packet_name(packet)
    if name in DENIED_NAMES:
        return False
    if name == "vFile":
        op, _, params = packet[6:].partition(b":")
        if op == b"open":
            fields = params.split(b",")
            return len(fields) == 3 and fields[1] == b"0"
        return op in SAFE_VFILE
    if name == "qRcmd":
        try:
            text = bytes.fromhex(packet[6:].decode("ascii")).decode("ascii").strip()
        except (ValueError, UnicodeDecodeError):
            return True
        return not text.split()[:1] or text.split()[0] in ("help", "info")
    if name == "QNonStop":
        return packet != b"QNonStop:1" and not re.fullmatch(rb"QNonStop:0*[1-9a-fA-F].*", packet)
    return True

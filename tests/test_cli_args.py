"""Command line, addresses, launch settings and the extended/monitor packets that need no process."""

from __future__ import annotations

import shlex
import socket

import pytest

from gdbstub import cli
from gdbstub.launcher import Launcher, shell_word
from gdbstub.protocol import monitor
from gdbstub.protocol.registry import new_session
from gdbstub.protocol.session import S_STOP_REPLIES, Session
from gdbstub.target.linux.process import LinuxTarget
from gdbstub.transport import AddressError, parse_address


def test_parse_args_program_and_options() -> None:
    opts = cli.parse_args(["--once", "--debug-file=/tmp/x", "--no-disable-randomization", ":1234", "prog", "a", "--b"])
    assert opts.once and opts.debug and opts.debug_file == "/tmp/x" and not opts.disable_aslr
    assert opts.comm == ":1234" and opts.program == ["prog", "a", "--b"]


def test_parse_args_wrapper_then_more_options() -> None:
    opts = cli.parse_args(["--wrapper", "env", "TEST=1", "--", "--once", "--multi", "localhost:1"])
    assert opts.wrapper == ["env", "TEST=1"] and opts.once and opts.multi and opts.program == []


def test_parse_args_attach_and_errors() -> None:
    opts = cli.parse_args(["--attach", ":1", "42"])
    assert opts.attach and opts.program == ["42"]
    for bad in (["--attach", ":1", "x"], [":1"], [], ["--wrapper", "env"], ["--bogus", ":1", "p"],
                ["--disable-packet=nope", ":1", "p"]):
        with pytest.raises(cli.UsageError):
            cli.parse_args(bad)


def test_disable_packet_names_map_to_packets() -> None:
    opts = cli.parse_args(["--disable-packet=vCont,qfThreadInfo", ":1", "p"])
    assert opts.disabled == {"vCont", "vCont?", "qfThreadInfo", "qsThreadInfo"}
    every = cli.parse_args(["--disable-packet=threads", ":1", "p"]).disabled
    assert every == {"vCont", "vCont?", "Tthread", "qC", "qfThreadInfo", "qsThreadInfo"}  # gdbserver's: not T
    assert cli.parse_args(["--disable-packet=T", ":1", "p"]).disabled == {S_STOP_REPLIES}  # T stop replies


@pytest.mark.parametrize(("text", "host", "port", "family"), [
    (":2345", "127.0.0.1", 2345, socket.AF_INET),
    ("localhost:1", "127.0.0.1", 1, socket.AF_INET),
    ("127.0.0.1:0", "127.0.0.1", 0, socket.AF_INET),
    ("::1:7", "::1", 7, socket.AF_INET6),
    ("[::1]:7", "::1", 7, socket.AF_INET6),
    ("tcp:127.0.0.1:9", "127.0.0.1", 9, socket.AF_INET),
    ("tcp4:localhost:9", "127.0.0.1", 9, socket.AF_INET),
    ("tcp6:localhost:9", "::1", 9, socket.AF_INET6),
    ("tcp6::9", "::1", 9, socket.AF_INET6),
])
def test_tcp_addresses(text: str, host: str, port: int, family: int) -> None:
    addr = parse_address(text)
    assert (addr.kind, addr.host, addr.port, addr.family) == ("tcp", host, port, family)


@pytest.mark.parametrize("text", ["tcp8:123:1234", "udp123::::1234", "garbage:1234:1234", "1.2.3.4:99999",
                                  "host:port", "tcp4:[::1]:1", "nocolon", "unix:", "127.0.0.1:"])
def test_bad_addresses(text: str) -> None:
    with pytest.raises(AddressError):
        parse_address(text)


@pytest.mark.parametrize(("text", "why"), [
    ("tcp8:123:1234", "Name or service not known"), ("udp123::::1234", "Name or service not known"),
    ("garbage:1234:1234", "Name or service not known"), (":abc", "Servname not supported for ai_socktype"),
])
def test_unresolvable_addresses_worded_as_gdbserver(text: str, why: str) -> None:
    """Harnesses tell a failed start by gdbserver's own words."""
    with pytest.raises(AddressError, match=f"^{text}: cannot resolve name: {why}$"):
        parse_address(text)


def test_stdio_and_unix_addresses() -> None:
    assert parse_address("-").kind == "stdio" and parse_address("stdio").kind == "stdio"
    addr = parse_address("unix:/tmp/s")
    assert addr.kind == "unix" and addr.path == "/tmp/s"


@pytest.mark.parametrize(("arg", "word"), [
    ("plain", "plain"), (">", ">"), ("*.c", "*.c"), ("$HOME", "$HOME"),
    ("a b", "'a b'"), ("", "''"), ('q"x', shlex.quote('q"x')), ("it's", shlex.quote("it's")),
    ("back\\slash", shlex.quote("back\\slash")), ("new\nline", shlex.quote("new\nline")),
])
def test_shell_word(arg: str, word: str) -> None:
    assert shell_word(arg) == word


def test_launcher_command_forms() -> None:
    launcher = Launcher()
    assert launcher.command(["/p", "a b"]) == (["/p", "a b"], 0)
    launcher.wrapper = ["/usr/bin/env", "X=1"]
    assert launcher.command(["/p"]) == (["/usr/bin/env", "X=1", "/p"], 1)
    launcher.startup_with_shell = True
    cmd, execs = launcher.command(["/p", "a b", ">", "out"])
    assert execs == 2 and cmd[1] == "-c" and cmd[2] == "exec /usr/bin/env X=1 /p 'a b' > out"
    launcher.wrapper = []
    assert launcher.command(["/p"])[1] == 1


def _session() -> Session:
    s = new_session(LinuxTarget(), extended=True)
    s.launcher = Launcher(env={"A": "1"}, initial_env={"A": "1"})
    sent: list[bytes] = []
    s.notify = sent.append
    return s


def _sent(s: Session) -> list[bytes]:
    """What the session sent as console output (O packets)."""
    sent: list[bytes] = s.notify.__self__  # type: ignore[attr-defined]
    return sent


def test_environment_packets() -> None:
    s = _session()
    assert s.launcher is not None
    assert s.handle(b"QEnvironmentHexEncoded:" + b"B=x=y\nz".hex().encode()) == b"OK"
    assert s.launcher.env["B"] == "x=y\nz"
    assert s.handle(b"QEnvironmentUnset:" + b"A".hex().encode()) == b"OK"
    assert "A" not in s.launcher.env
    assert s.handle(b"QEnvironmentReset") == b"OK"
    assert s.launcher.env == {"A": "1"}
    for bad in (b"QEnvironmentHexEncoded:zz", b"QEnvironmentHexEncoded:" + b"noequals".hex().encode(),
                b"QStartupWithShell:2", b"QDisableRandomization:"):
        assert s.handle(bad) == b"E01", bad


def test_settings_packets() -> None:
    s = _session()
    assert s.launcher is not None
    assert s.handle(b"QSetWorkingDir:" + b"/tmp".hex().encode()) == b"OK" and s.launcher.cwd == "/tmp"
    assert s.handle(b"QSetWorkingDir:") == b"OK" and s.launcher.cwd is None
    assert s.handle(b"QStartupWithShell:1") == b"OK" and s.launcher.startup_with_shell
    assert s.handle(b"QDisableRandomization:0") == b"OK" and not s.launcher.disable_aslr


def test_vrun_needs_a_program_and_extended_mode() -> None:
    s = _session()
    assert s.handle(b"vRun;") == b"E01"  # no program yet
    assert s.handle(b"vRun;zz") == b"E01"
    assert s.handle(b"vAttach;zz") == b"E01"
    assert s.handle(b"vAttach;0") == b"E01"
    plain = new_session(LinuxTarget())
    assert plain.handle(b"vRun;" + b"/bin/true".hex().encode()) == b"E01"
    assert plain.handle(b"!") == b"OK" and plain.negotiated.extended


def test_qsupported_offers_extended_settings() -> None:
    reply = _session().handle(b"qSupported:multiprocess+")
    assert reply is not None
    for name in (b"QEnvironmentHexEncoded+", b"QSetWorkingDir+", b"QStartupWithShell+", b"QDisableRandomization+"):
        assert name in reply


def test_monitor_help_info_and_unknown() -> None:
    s = _session()
    assert s.handle(b"qRcmd," + b"help".hex().encode()) == b"OK"
    text = b"".join(bytes.fromhex(p[1:].decode()) for p in _sent(s)).decode()
    assert text.startswith("The following monitor commands are supported:")
    assert s.handle(b"qRcmd," + b"info".hex().encode()) == b"OK"
    assert s.handle(b"qRcmd," + b"bogus".hex().encode()) == b"E01"
    assert s.handle(b"qRcmd,zz") == b"E01"
    assert monitor.run_command(s, "set libthread-db-search-path /x")
    assert not monitor.run_command(s, "set debug maybe")


def test_monitor_exit_finishes_session() -> None:
    s = _session()
    assert s.handle(b"qRcmd," + b"exit".hex().encode()) == b"OK"
    assert s.status.finished


def test_debug_format_option() -> None:
    assert cli.parse_args(["--debug-format=timestamp", ":1", "p"]).debug_format == "timestamp"
    assert monitor.set_debug_format("none") and not monitor.set_debug_format("colour")
    assert monitor.debug_format("timestamp,,none") == (
        "Timestamps will be added to debug output.\nAll extra debug format options disabled.\n", None)
    assert monitor.debug_format("all,colour,none") == ("All extra debug format options enabled.\n", "colour")
    assert monitor.debug_format("all none") == ("", "all none")


@pytest.mark.parametrize(("value", "reply", "said"), [
    ("all", b"OK", "All extra debug format options enabled.\n"),
    ("none", b"OK", "All extra debug format options disabled.\n"),
    ("timestamp", b"OK", "Timestamps will be added to debug output.\n"),
    (",", b"OK", ""),
    ("timestamp,bogus", b"E01", 'Timestamps will be added to debug output.\nUnknown debug-format argument: "bogus"\n'),
])
def test_monitor_debug_format(value: str, reply: bytes, said: str) -> None:
    s = _session()
    assert s.handle(b"qRcmd," + f"set debug-format {value}".encode().hex().encode()) == reply
    text = b"".join(bytes.fromhex(p[1:].decode()) for p in _sent(s)).decode()
    assert text.startswith(said)
    assert text[len(said):] == ("" if reply == b"OK" else monitor.HELP)
    monitor.set_debug_format("none")

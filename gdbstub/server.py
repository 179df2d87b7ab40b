"""The event loop: one thread watches the client and SIGCHLD (a signalfd),
feeds packets to the session and stop events back to the client. Every ptrace
call the target makes happens on this thread."""

from __future__ import annotations

import select
import sys
import time

from .hints import Callable, signal, signal_name
from .launcher import Launcher
from .logs import DEBUG, get_logger
from .protocol import framing
from .protocol.hostio import trim_heap
from .protocol.registry import new_session
from .protocol.session import SPLIT_SIZE, SPLITS, Session, SessionEnd, packet_name
from .target.base import STOP_EXITED, STOP_TERMINATED, ResumeAction, StopEvent, StopKind
from .target.linux.childsignal import SIGCHLD_ONLY, ChildSignal
from .target.linux.process import LaunchError, LinuxTarget
from .target.linux.spawn import EXIT_SIGNALS, release_exit_signals
from .transport import MSG_DONTWAIT, QUICK_SEND, SEND_TIMEOUT, Connection, Listener

log = get_logger("gdbstub.server")
_encode = framing.encode
rsp_log = get_logger("gdbstub.rsp")

# After a resume in all-stop (and after a stop the stub handled silently, which resumes),
# the loop waits here for the stop's SIGCHLD (sigtimedwait, asleep: no CPU) up to
# STOP_WAIT seconds, at most STOP_WAITS times in a row, before going back to epoll: a
# step or a quick hit is then one wait instead of a failed waitpid, an epoll wake-up and
# a signalfd read. Polling instead burns the CPU the stepped thread needs to finish its
# step on a loaded machine. The client's ^C waits for that at most.
STOP_WAIT = 0.002
STOP_WAITS = 32
LOG_PREFIX = 64  # packets are logged up to this many bytes (no memory contents beyond it)
WRITE_PREFIX = 16  # of M/X packets, only this many characters of the data written


class StubExit(BaseException):
    """A signal asked the stub to end (SIGTERM, SIGHUP, SIGINT).

    A BaseException, like KeyboardInterrupt, so that no ``except Exception``
    (Session.handle's last line of defence) can swallow it."""


class ServerOptions:
    """How the server runs (a plain class: each dataclass costs start-up time)."""

    def __init__(self, once: bool = False, extended: bool = False, disabled_packets: set[str] | None = None,
                 send_timeout: float = SEND_TIMEOUT) -> None:
        self.once = once
        self.extended = extended
        self.disabled_packets: set[str] = set() if disabled_packets is None else disabled_packets
        self.send_timeout = send_timeout  # --send-timeout: a client that reads nothing this long is gone


class Server:
    """Serves clients one at a time over one listener."""

    def __init__(self, listener: Listener, target: LinuxTarget, launcher: Launcher,
                 options: ServerOptions) -> None:
        self.listener = listener
        self.target = target
        self.launcher = launcher
        self.options = options
        self.child_signal = ChildSignal()
        self.session: Session | None = None
        # '!' seen on some connection (gdbserver keeps it). Not --multi itself: gdbserver
        # --multi still leaves when a plain 'target remote' client goes and no program is left
        # (pwntools starts it so and waits for it to end).
        self.extended_seen = False

    # --- life cycle --------------------------------------------------------------

    def install_signals(self) -> None:
        self.child_signal.install()
        self.target.sigchld_blocked = self.child_signal.signalfd  # range steps awaited in poll

        def _exit(signum: int, frame: object) -> None:
            raise StubExit(signal_name(signum))

        for sig in EXIT_SIGNALS:
            signal.signal(sig, _exit)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    def serve(self) -> int:
        """Accept clients until done; returns the process exit status.

        After a client leaves, the stub ends with --once, on stdio, after ``monitor exit``
        or a non-extended kill, and unless some client sent '!' (extended-remote, not just
        --multi): when the program has exited or was killed or detached, or when an attached
        program was all there was. Otherwise it waits for the next client. A program it launched is
        killed when its client leaves (never left running), and outside extended mode
        the next client gets a fresh launch of it."""
        try:
            release_exit_signals()  # held since start-up (cli): one sent meanwhile ends the stub here
            while True:
                conn = self.listener.accept()
                if self.listener.addr.kind != "stdio":
                    print(f"Remote debugging from host {conn.peer}", file=sys.stderr, flush=True)
                try:
                    self.serve_client(conn)
                finally:
                    conn.close()
                session = self.session
                if session is not None:
                    self.extended_seen |= session.negotiated.extended_requested
                    if session.status.finished:
                        break
                if self.options.once or self.listener.addr.kind == "stdio":
                    break
                if self._trace_outlives_client():
                    continue  # disconnected tracing: the program and its trace wait for the next client
                alive = self.target.alive()
                relaunch = self.target.launched() and not self.extended_seen
                # No launched program outlives its client, even one left running: kill
                # what we started and detach from what we attached to.
                self.target.close()
                if not alive and not self.extended_seen:
                    break  # its program exited, was killed or detached: gdbserver leaves too
                if relaunch:
                    try:  # the next client gets a fresh launch
                        self.launcher.start(self.target)
                    except LaunchError as exc:
                        print(exc, file=sys.stderr, flush=True)
                        break
                elif not self.extended_seen:
                    break  # an attached program was detached: nothing left to debug
                trim_heap()
                print("Remote side has terminated connection.  "
                      "gdbstub will reopen the connection.", file=sys.stderr, flush=True)
                self.listener.announce()
        except StubExit as exc:
            log.info("exiting on %s", exc)
        finally:
            # A second signal must not cut the clean-up short (kill or detach, breakpoints out).
            signal.pthread_sigmask(signal.SIG_BLOCK, EXIT_SIGNALS)
            self.target.close()
            self.listener.close()
        return 0

    # --- one client ---------------------------------------------------------------

    def serve_client(self, conn: Connection) -> None:
        session = new_session(self.target, extended=self.options.extended or self.extended_seen)
        session.launcher = self.launcher
        negotiated, status = session.negotiated, session.status
        negotiated.disabled |= self.options.disabled_packets
        if "vCont" in negotiated.disabled:
            tables = session.tables
            tables.features = [f for f in tables.features if f[0] != "vContSupported+"]
        self.session = session
        conn.send_timeout = self.options.send_timeout
        framer = framing.Framer()
        last_sent = b""
        # epoll itself, not selectors: its Python layer costs microseconds per wake-up,
        # and there are three wake-ups per step (the packet, the stop, the next packet).
        sel = select.epoll()
        client_fd, child_fd, listener_fd = conn.fileno(), self.child_signal.fileno(), -1
        sel.register(client_fd, select.EPOLLIN)
        sel.register(child_fd, select.EPOLLIN)
        if self.listener.addr.kind != "stdio":
            listener_fd = self.listener.fileno()
            sel.register(listener_fd, select.EPOLLIN)

        # Asked each time (monitor set remote-debug may change it), but only once logging is
        # imported: before that nothing can have turned it on, and a dict look-up says so.
        logging_on, modules = rsp_log.isEnabledFor, sys.modules
        encode, conn_send, handle, poll_target = framing.encode, conn.send, session.handle, self._poll_target
        drain, recv = self.child_signal.drain, conn.recv
        # ChildSignal.wait's sigtimedwait, called here (no two calls per stop); None: no
        # signalfd, so SIGCHLD's handler takes it and there is nothing to wait for here.
        sigwait = signal.sigtimedwait if self.child_signal.signalfd else None
        target = self.target
        poll_first, threads, queued = target.poll_first, target.threads, target.ready
        # A packet seen lately is framed (framer.seen: the raw read -> its payload), split
        # (SPLITS) and handed to its handler here, without whole_packet's and handle's calls.
        seen_get, splits_get, handlers_get = framer.seen.get, SPLITS.get, session.tables.handlers.get
        framed_get = framing.FRAMED.get

        sock_send, sock_recv = conn.quick_send, conn.quick_recv  # None: stdio
        # A bulk read's next part, answered while the client takes in the last one: (the
        # packet expected, its framed reply, the read after it). Any other packet or a target
        # event drops it (in all-stop nothing else changes the memory of a stopped program).
        ahead: tuple[bytes, bytes, bytes | None] | None = None

        def send(payload: bytes) -> None:
            send_packet(encode(payload))

        def send_packet(packet: bytes) -> None:
            nonlocal last_sent
            if "logging" in modules and logging_on(DEBUG):
                rsp_log.debug("-> %s", _clip(packet))
            last_sent = packet
            if sock_send is not None and len(packet) <= QUICK_SEND and not conn.stalled:
                # Connection.send's usual case without its call: the socket takes it whole.
                try:
                    sent = sock_send(packet, MSG_DONTWAIT)
                except OSError:  # full (BlockingIOError) or gone: Connection.send sorts it out
                    sent = 0
                if sent == len(packet):
                    return
                packet = packet[sent:]
            conn_send(packet)

        def read_ahead(request: bytes) -> tuple[bytes, bytes, bytes | None] | None:
            """REQUEST's framed reply, made now: the client is busy with the last part (~18 ns
            a byte for gdb), so the next part's read, escape and checksum are off the path."""
            session.read_next = None
            if session.nonstop.on:  # other threads may run and write
                return None
            packet = encode(handle(request) or b"")
            following, session.read_next = session.read_next, None
            return request, packet, following

        def on_packet(data: bytes) -> None:
            """One packet: its reply, or after a resume the stop if it is there already."""
            nonlocal ahead
            if "logging" in modules and logging_on(DEBUG):
                rsp_log.debug("<- %s", _clip(data))
            if not negotiated.no_ack:
                conn_send(b"+")
            if ahead is not None:
                expected, packet, following = ahead
                ahead = None
                if data == expected:
                    send_packet(packet)
                    if following is not None:
                        ahead = read_ahead(following)
                    return
            was_running = status.running
            split = splits_get(data) if len(data) <= SPLIT_SIZE else None
            handler = None
            if split is not None and not negotiated.disabled:  # handle's usual case, inline
                name, args = split
                handler = handlers_get(name)
            if handler is not None:
                try:
                    reply = handler(session, args)
                except Exception as exc:
                    reply = session.handler_failed(exc, data, name)
            else:
                reply = handle(data)
            if reply is not None:
                framed = framed_get(reply) if len(reply) <= 3 and type(reply) is bytes else None
                send_packet(framed if framed is not None else encode(reply))
                if session.read_next is not None:
                    ahead = read_ahead(session.read_next)
            elif status.running and not was_running:
                if session.nonstop.on:
                    poll_target(session, send_packet)  # what is there at once; the rest comes by SIGCHLD
                else:
                    await_stop()

        def await_stop() -> None:
            """All-stop, running: wait for the next SIGCHLD and poll, while that finds no stop to
            report (a silent one: a false condition, a passed signal), a bounded number of times.
            Each SIGCHLD taken here is one the signalfd does not wake the loop for, and a step
            (not done yet when the resume returns) costs no waitpid that finds nothing."""
            waits = STOP_WAITS  # counted down: no range object per stop
            while waits:
                waits -= 1
                if (queued or target.range_stepper is not None  # poll_first(), without its call
                        or sigwait is None or sigwait(SIGCHLD_ONLY, STOP_WAIT) is None):
                    # A stop queued already, a range step (poll awaits it), or nothing came in
                    # time (or no signalfd): poll for what is there; SIGCHLD brings the rest.
                    poll_target(session, send_packet)
                    return
                if poll_target(session, send_packet):
                    if len(threads) > 1:
                        drain()  # the other threads' SIGCHLDs of the stop-all: no wake-up for them
                    return
                if not status.running:
                    return

        session.notify = send

        def send_notification(payload: bytes) -> None:
            packet = framing.encode_notification(payload)
            if rsp_log.isEnabledFor(DEBUG):
                rsp_log.debug("-> %s", _clip(packet))
            conn.send(packet)

        session.nonstop.send = send_notification
        try:
            while True:
                # At most the three descriptors registered: epoll's buffer for them is a small
                # one (without maxevents, 1023 events' worth is malloc'ed and freed per wake-up).
                for fd, _ in sel.poll(-1, 3):
                    if fd == child_fd:
                        ahead = None
                        drain()
                        if (not poll_target(session, send_packet) and status.running and not session.nonstop.on
                                and not poll_first()):
                            await_stop()  # a silent stop went on: its next stop is often close
                    elif fd == listener_fd:
                        if conn.hung_up():  # a client reconnecting: it is next once this one is gone
                            log.info("client disconnected")
                            return
                        self.listener.refuse_pending()
                    else:
                        try:  # Connection.recv, without its call on a socket
                            data = sock_recv(65536) if sock_recv is not None else recv()
                        except BlockingIOError:
                            raise
                        except OSError:  # reset or gone, as Connection.recv has it
                            data = b""
                        if not data:
                            log.info("client disconnected")
                            return
                        # The usual read: one plain packet, often one seen lately.
                        body = seen_get(data) if not framer.state else None
                        if body is None:
                            body = framer.whole_packet(data)
                        if body is not None:
                            on_packet(body)
                            if status.finished:
                                return
                        else:
                            for event in framer.feed(data):
                                if isinstance(event, framing.Packet):
                                    on_packet(event.data)
                                elif isinstance(event, framing.Interrupt):
                                    self.target.interrupt()  # stopped too: the next resume reports it
                                elif isinstance(event, framing.Nak):
                                    if last_sent and not negotiated.no_ack:
                                        conn_send(last_sent)
                                elif isinstance(event, framing.BadPacket):
                                    log.debug("bad packet: %s", event.reason)
                                    if not negotiated.no_ack:
                                        conn_send(b"-")
                                elif isinstance(event, framing.Oversized):
                                    # Acknowledged (a NAK would bring the same packet back) and refused.
                                    if not negotiated.no_ack:
                                        conn_send(b"+")
                                    send(oversized_reply(session, event))
                                if status.finished:
                                    return
                                if conn.stalled:
                                    break
                    if conn.stalled:
                        log.warning("client stopped reading: a reply made no progress for %g s; "
                                    "treating the client as gone", conn.send_timeout)
                        return
        except SessionEnd:
            return
        finally:
            sel.close()
            session.close()  # release what the session holds (vFile descriptors)

    def _poll_target(self, session: Session, send_packet: Callable[[bytes], None]) -> bool:
        """Report the stops that are ready (SEND_PACKET sends a framed reply); returns whether
        the session is stopped now."""
        # All-stop: one stop ends the run. Non-stop: every thread's stop is an
        # event of its own, so take all that are ready.
        status, nonstop = session.status, session.nonstop
        while status.running or nonstop.on:
            try:
                event = self.target.poll()
            except Exception:  # a ptrace race or a bug: keep serving, never take the program down
                log.exception("error while waiting for the program")
                break
            if event is None:
                break
            kind = event.kind
            if kind is STOP_EXITED or kind is STOP_TERMINATED:
                _say_exit(event)
                if not self.target.processes and self.launcher.terminal is not None:
                    self.launcher.terminal.restore()  # nothing runs on it now: the stub takes it back
            reply = session.on_stop(event)
            if reply is not None:
                send_packet(_encode(reply))
        return not status.running

    def _trace_outlives_client(self) -> bool:
        """Disconnected tracing (QTDisconnected:1, a trace running): the one case where the
        program outlives its client. It runs on, collecting, until the next client connects;
        then it is stopped and that client finds the trace (qTStatus, upload, tfind)."""
        tracer = self.target.made_tracer
        if tracer is None or not (tracer.running and tracer.disconnected and self.target.threads):
            return False
        print("Disconnected tracing in effect, leaving gdbstub attached to the process",
              file=sys.stderr, flush=True)
        self.target.set_non_stop(False)
        self.target.resume({tid: ResumeAction("c") for tid in self.target.threads})
        self.listener.announce()
        sel = select.epoll()
        sel.register(self.child_signal.fileno(), select.EPOLLIN)
        sel.register(self.listener.fileno(), select.EPOLLIN)
        try:
            while self.target.processes:
                event = self.target.poll()
                if event is not None:
                    if event.kind is StopKind.SIGNAL and self.target.threads:
                        # Nobody to report it to: pass it on, as a continuing client would.
                        self.target.resume({tid: ResumeAction("c", event.signal if tid == event.tid else 0)
                                            for tid in self.target.threads})
                    continue
                if self.listener.fileno() in [fd for fd, _ in sel.poll()]:
                    break
                self.child_signal.drain()
        finally:
            sel.close()
        if self.target.running:
            self.target.set_non_stop(False)  # the next client finds everything stopped
        return bool(self.target.processes)  # the program ended meanwhile: as when it ends with a client


def oversized_reply(session: Session, event: framing.Oversized) -> bytes:
    """The refusal of a packet over PacketSize: E01 for a packet the stub knows, the empty
    reply for one it does not (as for any unknown packet)."""
    name = packet_name(event.head)
    log.debug("packet too long: %d bytes of %r...", event.size, event.head[:16])
    return b"E01" if name in session.tables.handlers and name not in session.negotiated.disabled else b""


def _say_exit(event: StopEvent) -> None:
    """gdbserver's note on its terminal when a program ends."""
    if event.kind is StopKind.EXITED:
        print(f"\nChild exited with status {event.status}", file=sys.stderr, flush=True)
    elif event.kind is StopKind.TERMINATED:
        try:
            name = signal_name(event.signal)
        except ValueError:
            name = f"SIG{event.signal}"
        print(f"\nChild terminated with signal = 0x{event.signal:x} ({name})", file=sys.stderr, flush=True)


def _clip(data: bytes) -> str:
    stamp = time.strftime("%H:%M:%S")
    limit = LOG_PREFIX
    if data[:1] in (b"M", b"X") and b":" in data[:40]:
        # Memory the client writes: the address, length and a few bytes only.
        limit = min(limit, data.index(b":") + 1 + WRITE_PREFIX)
    text = data[:limit].decode("ascii", "backslashreplace")
    more = f"...({len(data)} bytes)" if len(data) > limit else ""
    return f"[{stamp}] {text}{more}"

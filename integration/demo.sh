#!/usr/bin/env bash
# A short real session: gdbstub serves build/sample, stock gdb debugs it, then we check the stub exited.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
STUB="$(dirname "$PYTHON")/gdbstub"  # the installed command, as users start it
PROG=build/sample
[ -x "$PROG" ] || make -s programs

log=$(mktemp)
out=$(mktemp)
"$STUB" --once 127.0.0.1:0 "$PROG" 2>"$log" &
stub=$!
trap 'kill -9 "$stub" 2>/dev/null || true; rm -f "$log" "$out"' EXIT

port=""
for _ in $(seq 200); do    # up to 20 s
    port=$(sed -n 's/.*Listening on port \([0-9][0-9]*\).*/\1/p' "$log")
    [ -n "$port" ] && break
    kill -0 "$stub" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$port" ]; then
    echo "demo: gdbstub did not start listening:" >&2
    cat "$log" >&2
    exit 1
fi
echo "== $STUB --once 127.0.0.1:0 $PROG   (listening on port $port)"
echo "== gdb -batch $PROG -ex 'target remote 127.0.0.1:$port' ..."

commands=(
    "break distance2"
    "continue"
    "backtrace"
    "info registers rip rsp rbp eflags"
    "print *a"
    "print a->label"
    "x/3dw a"
    "x/2i \$pc"
    "up"
    "print p"
    "print sum"
    "down"
    "step"
    "next"
    "print ddx"
    "finish"
    "delete"
    "continue"
)
args=(-nx -batch -ex "set confirm off" -ex "set pagination off" -ex "target remote 127.0.0.1:$port")
for c in "${commands[@]}"; do args+=(-ex "echo (gdb) $c\n" -ex "$c"); done
timeout 120 gdb "${args[@]}" "$PROG" 2>&1 | tee "$out"

for _ in $(seq 100); do    # up to 10 s
    kill -0 "$stub" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$stub" 2>/dev/null; then
    echo "demo: FAIL: gdbstub is still running after gdb quit" >&2
    exit 1
fi
rc=0
wait "$stub" || rc=$?
echo "== gdbstub's log:"
cat "$log"
if ! grep -q "exited normally" "$out"; then
    echo "demo: FAIL: the program did not run to a normal exit under gdb" >&2
    exit 1
fi
echo "== demo OK: gdbstub exited with status $rc"

"""ptrace's numbers: requests, options, events (``<sys/ptrace.h>``, ``<linux/ptrace.h>``), and the
few others the ptrace layer uses. Apart from the bindings (``ptrace``), which import ctypes:
the command line starts its program with these before it listens, through ``spawn``'s own
binding, without ctypes.
"""

__all__ = [  # ptrace re-exports them all
    "ADDR_NO_RANDOMIZE",
    "ATTACH",
    "CONT",
    "DETACH",
    "EVENT_CLONE",
    "EVENT_EXEC",
    "EVENT_EXIT",
    "EVENT_FORK",
    "EVENT_STOP",
    "EVENT_VFORK",
    "EVENT_VFORK_DONE",
    "GETEVENTMSG",
    "GETFPREGS",
    "GETREGS",
    "GETREGSET",
    "GETSIGINFO",
    "INTERRUPT",
    "KILL",
    "NT_FPREGSET",
    "NT_PRSTATUS",
    "NT_X86_XSTATE",
    "O_EXITKILL",
    "O_TRACECLONE",
    "O_TRACEEXEC",
    "O_TRACEEXIT",
    "O_TRACEFORK",
    "O_TRACESYSGOOD",
    "O_TRACEVFORK",
    "O_TRACEVFORKDONE",
    "PEEKDATA",
    "PEEKUSER",
    "POKEDATA",
    "POKEUSER",
    "SEIZE",
    "SETFPREGS",
    "SETOPTIONS",
    "SETREGS",
    "SETREGSET",
    "SETSIGINFO",
    "SINGLESTEP",
    "SYSCALL",
    "SYS_TGKILL",
    "TRACEME",
    "USER_DEBUGREG_OFFSET",
    "WALL",
]

TRACEME = 0
PEEKDATA = 2
PEEKUSER = 3
POKEDATA = 5
POKEUSER = 6
CONT = 7
KILL = 8
SINGLESTEP = 9
GETREGS = 12
SETREGS = 13
GETFPREGS = 14
SETFPREGS = 15
ATTACH = 16
DETACH = 17
SYSCALL = 24
SETOPTIONS = 0x4200
GETEVENTMSG = 0x4201
GETSIGINFO = 0x4202
SETSIGINFO = 0x4203
GETREGSET = 0x4204
SETREGSET = 0x4205
SEIZE = 0x4206
INTERRUPT = 0x4207

O_TRACESYSGOOD = 0x1
O_TRACEFORK = 0x2
O_TRACEVFORK = 0x4
O_TRACECLONE = 0x8
O_TRACEEXEC = 0x10
O_TRACEVFORKDONE = 0x20
O_TRACEEXIT = 0x40
O_EXITKILL = 0x100000

EVENT_FORK = 1
EVENT_VFORK = 2
EVENT_CLONE = 3
EVENT_EXEC = 4
EVENT_VFORK_DONE = 5
EVENT_EXIT = 6
EVENT_STOP = 128

NT_PRSTATUS = 1
NT_FPREGSET = 2
NT_X86_XSTATE = 0x202

WALL = 0x40000000  # __WALL: not in the os module
ADDR_NO_RANDOMIZE = 0x0040000
SYS_TGKILL = 234

USER_DEBUGREG_OFFSET = 848  # offsetof(struct user, u_debugreg)

"""The Linux ptrace target: ``process.LinuxTarget`` is built from layers, one module each,
each using only those below it (a layer calls upward only through the three hooks
``decode.StatusDecoder`` declares and ``resume.ResumePolicy`` implements)::

    process      LinuxTarget: launch, attach, kill, detach, close           (top)
    resume       which threads run and how; step-overs; non-stop pausing
    stops        poll, stopping every thread, pending events, what to report
    decode       one wait status -> a StopEvent, or handled silently
    breakpoints  memory with our int3s hidden, software breakpoints, ``hw``, conditions
    registers    per-thread register caches, PC, expedite, siginfo
    threads      Thread, Process, ThreadState, the thread table               (bottom)

beside the helpers they use: ``ptrace`` (the system calls), ``memory`` (/proc/PID/mem),
``debugregs`` (DR0-DR7), ``procfs``, ``svr4`` and ``elf`` (/proc, the library list), and
``inferior_syscall`` (a system call run inside the program for lldb's ``_M``/``_m``).

The rules: every ptrace call happens on the thread that launched or attached (the server's
event loop). All-stop: when one thread reports an event every other thread is stopped with
SIGSTOP; events those threads had meanwhile are kept pending and reported on a later
resume (the stepping thread's first, as gdbserver does), never lost. A breakpoint hit is
rewound at once, so a pending one whose breakpoint gdb removed meanwhile is just dropped.

Where to look:

- A SIGTRAP becomes a breakpoint hit ("swbreak": the PC just past one of our int3s, rewound
  at once), a hardware breakpoint or watchpoint (``debugregs.DebugRegisters.stop_reason``
  reads DR6), a finished step (no reason, the thread was stepping) or nothing (the int3 of
  a breakpoint removed meanwhile, a false condition, a range step still in range) in
  ``decode.StatusDecoder._sigtrap``; ``_hit_wanted`` asks the conditions. Our own step off
  a breakpoint never goes through it when it ends plainly: ``resume.ResumePolicy._step_over``
  waits for that step itself and passes anything else to ``decode._on_status``.
- The decision to step over a breakpoint: ``resume._resume_one`` (the thread's PC is on one
  of ours), ``resume._step_off_breakpoints`` (all-stop: before anything runs) and
  ``resume._step_over_alone`` (a hit nobody wants while other threads run).
- Non-stop: threads are paused around a step-over by ``resume._step_over_non_stop`` (with
  ``stops._stop_all``) and restarted by ``resume._restart_paused``; vCont;t is
  ``resume.stop_threads``; ``resume.debug_registers_changed`` stops running threads so they
  pick up new debug registers. All-stop: ``stops._report`` stops every thread and picks
  the event to report; the others are kept pending (``stops._keep_pending``).
- A new clone's thread: ``decode._new_thread`` adds it and tells the debug registers it has
  none yet (``debugregs.DebugRegisters.forget_thread``); ``resume._ptrace_resume`` (every
  resume) calls ``debugregs.DebugRegisters.sync``, which writes its process's DR0-DR7
  before it first runs.
  A parent with QThreadOptions' clone option (``threads.Thread.options``) goes through
  ``decode._clone_event`` instead: a 'clone' stop, the child held stopped until that event is
  reported (``resume._unreported_clones``).
- A thread's state: ``threads.Thread``'s stored ``state`` (a ``threads.ThreadState``: running, stepping,
  stepping over, stopping, paused by us, stopped with an event pending, stopped) and the
  facts behind it change only through ``threads.Thread``'s named transitions
  (``threads.Thread.stopped_by_event``, ``threads.Thread.resumed_running``,
  ``threads.Thread.sigstop_sent``, ``threads.Thread.event_kept``, ``threads.Thread.reported``...);
  the states each may start from are one table, ``threads.TRANSITIONS``. The layers above
  read the flags but never assign them. Processes have no state of their own: a process
  is in ``processes`` until its exit is seen, it is killed or detached.
"""

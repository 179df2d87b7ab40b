/* Forks a child that exits at once and waits (up to 5 s) for the SIGCHLD that says so.
 * Prints whether SIGCHLD was blocked at start ("blocked=0|1") and whether the handler ran
 * ("sigchld=0|1"): a debugger must hand a program the signal mask it would have had. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t seen;

static void on_chld(int sig)
{
    (void)sig;
    seen = 1;
}

int main(void)
{
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    printf("blocked=%d\n", sigismember(&now, SIGCHLD));
    signal(SIGCHLD, on_chld);
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    struct timespec tick = {0, 10 * 1000 * 1000};
    for (int i = 0; i < 500 && !seen; i++)
        nanosleep(&tick, NULL);
    waitpid(child, NULL, 0);
    printf("sigchld=%d\n", (int)seen);
    fflush(stdout);
    return 0;
}

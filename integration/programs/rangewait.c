/* Range stepping's hard cases: `next` over one line that the server range-steps through while
 * something else happens. argv[1] picks the case:
 *   alarm   the line loops in itself until a SIGPROF handler ends the loop (a signal mid-range);
 *   thread  ... until a second thread, having hit a breakpoint, ends it;
 *   forever ... for ever (only a Ctrl-C stops the `next`);
 *   read    the line blocks in a read() made right there (a syscall instruction, no call out of
 *           the line's range) on a pipe nobody writes to.
 * Prints its pid first. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

volatile int done;
volatile unsigned long spins;

static void on_alarm(int sig)
{
    done = sig;
}

__attribute__((noinline)) void reached(void)
{
    spins += 0; /* LINE:reached */
}

static void *helper(void *arg)
{
    (void)arg;
    while (spins < 50) /* main is range-stepped through its loop by now */
        ;
    reached();
    done = 1;
    return NULL;
}

#if defined(__x86_64__)
#define READ_HERE(fd, buf)                                                                        \
    ({                                                                                            \
        long r_;                                                                                  \
        __asm__ volatile("syscall" : "=a"(r_) : "0"(0L), "D"((long)(fd)), "S"(buf), "d"(1L)       \
                         : "rcx", "r11", "memory");                                               \
        r_;                                                                                       \
    })
#else
#define READ_HERE(fd, buf)                                                                        \
    ({                                                                                            \
        long r_;                                                                                  \
        __asm__ volatile("int $0x80" : "=a"(r_) : "0"(3L), "b"(fd), "c"(buf), "d"(1L) : "memory"); \
        r_;                                                                                       \
    })
#endif

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "alarm";
    int fds[2];
    char c = 0;
    pthread_t th;
    if (pipe(fds) != 0)
        return 2;
    printf("rangewait pid %d\n", (int)getpid());
    fflush(stdout);
    if (strcmp(mode, "read") == 0) {
        long n = READ_HERE(fds[0], &c); /* LINE:read */
        printf("read returned %ld\n", n);
        return 0;
    }
    if (strcmp(mode, "thread") == 0) {
        if (pthread_create(&th, NULL, helper, NULL) != 0)
            return 3;
    } else if (strcmp(mode, "alarm") == 0) {
        struct itimerval soon = {{0, 0}, {0, 5000}}; /* 5 ms of its own CPU time: mid-range */
        signal(SIGPROF, on_alarm);
        setitimer(ITIMER_PROF, &soon, NULL);
    }
    do spins++; while (!done); /* LINE:spin */
    printf("done %d\n", done); /* LINE:after */
    if (strcmp(mode, "thread") == 0)
        pthread_join(th, NULL);
    return 0;
}

/* Prints what it was started with (argv, chosen environment variables, cwd, parent pid), then
 * optionally counts forever into a file so a detached or attached copy can be seen running.
 * Used by the extended-remote and CLI tests.  argv entries are printed one per line in brackets.
 * If GDBSTUB_COUNT_FILE is set the program loops, writing an increasing counter and the number of
 * SIGUSR1 it received there ("COUNT USR1"). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <signal.h>

volatile unsigned long count;
volatile sig_atomic_t usr1_seen; /* SIGUSR1 deliveries: a signal sent while stopped must not be lost */

static void on_usr1(int sig)
{
    (void)sig;
    usr1_seen++;
}
extern char **environ;

__attribute__((noinline)) void reached(void)
{
    count++; /* LINE:reached */
}

static void *spinner(void *arg)
{
    (void)arg;
    for (;;)
        sleep(1);
    return NULL;
}

int main(int argc, char **argv)
{
    char cwd[4096];
    printf("argc=%d\n", argc);
    for (int i = 0; i < argc; i++)
        printf("argv[%d]=[%s]\n", i, argv[i]);
    for (char **e = environ; *e; e++)
        if (strncmp(*e, "GDBSTUB_", 8) == 0 || strncmp(*e, "TEST", 4) == 0)
            printf("env=[%s]\n", *e);
    if (getcwd(cwd, sizeof cwd))
        printf("cwd=[%s]\n", cwd);
    printf("ppid=%d pid=%d\n", (int)getppid(), (int)getpid());
    fflush(stdout);
    reached();
    const char *file = getenv("GDBSTUB_COUNT_FILE");
    if (file) {
        signal(SIGUSR1, on_usr1);
        int nthreads = getenv("GDBSTUB_THREADS") ? atoi(getenv("GDBSTUB_THREADS")) : 0;
        pthread_t t;
        for (int i = 0; i < nthreads; i++)
            pthread_create(&t, NULL, spinner, NULL);
        for (;;) {
            FILE *f = fopen(file, "w");
            if (f) {
                fprintf(f, "%lu %d\n", count, (int)usr1_seen);
                fclose(f);
            }
            reached();
            usleep(20000);
        }
    }
    return 3;
}

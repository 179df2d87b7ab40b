/* Four threads call count() in a tight loop (bounded by a 60 s alarm); count() keeps
 * a per-thread tally. For non-stop tests of a breakpoint whose condition is false for
 * most threads: the server steps those over all the time, and no hit of the thread the
 * condition is true for may be lost meanwhile. */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define NTHREADS 4

volatile unsigned long calls[NTHREADS];
static int exit_code = -1;
volatile int quit;

__attribute__((noinline)) void count(int id)
{
    calls[id]++; /* LINE:count */
}

static void *spin(void *arg)
{
    int id = (int)(long)arg;
    for (;;) {
        count(id);
        if (id == 0 && exit_code >= 0 && quit)
            exit(exit_code);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t t[NTHREADS];
    if (argc > 1)
        exit_code = atoi(argv[1]);
    alarm(60);
    for (long i = 0; i < NTHREADS; i++)
        pthread_create(&t[i], NULL, spin, (void *)i);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    return 0;
}

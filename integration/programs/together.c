/* Three threads meet at a barrier and call together() at once: a breakpoint there is hit by
   several threads in one stop (lldb must count each hit once). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>

#define NTHREADS 3

pthread_barrier_t barrier;
volatile int arrived;

__attribute__((noinline)) int together(int id)
{
    __atomic_add_fetch(&arrived, 1, __ATOMIC_SEQ_CST); /* LINE:together */
    return id;
}

static void *thread_main(void *arg)
{
    char name[16];
    snprintf(name, sizeof name, "together-%ld", (long)arg);
    pthread_setname_np(pthread_self(), name);
    pthread_barrier_wait(&barrier);
    together((int)(long)arg);
    return arg;
}

int main(void)
{
    pthread_t t[NTHREADS];
    pthread_barrier_init(&barrier, NULL, NTHREADS);
    for (long i = 0; i < NTHREADS; i++)
        pthread_create(&t[i], NULL, thread_main, (void *)(i + 1));
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    printf("arrived=%d\n", arrived);
    return arrived == NTHREADS ? 0 : 1;
}

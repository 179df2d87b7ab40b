/* Eight named threads meet at a barrier, each calls worker(), then all are joined. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>

#define NTHREADS 8

pthread_barrier_t barrier;
volatile int counter;
pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

__attribute__((noinline)) int worker(int id)
{
    pthread_mutex_lock(&lock);
    counter += id; /* LINE:worker */
    pthread_mutex_unlock(&lock);
    return id;
}

static void *thread_main(void *arg)
{
    int id = (int)(long)arg;
    char name[16];
    snprintf(name, sizeof name, "worker-%d", id);
    pthread_setname_np(pthread_self(), name);
    pthread_barrier_wait(&barrier);
    worker(id);
    pthread_barrier_wait(&barrier);
    return arg;
}

int main(void)
{
    pthread_t t[NTHREADS];
    pthread_barrier_init(&barrier, NULL, NTHREADS + 1);
    for (long i = 0; i < NTHREADS; i++)
        pthread_create(&t[i], NULL, thread_main, (void *)(i + 1));
    pthread_barrier_wait(&barrier); /* all threads exist and are named */
    pthread_barrier_wait(&barrier); /* LINE:all-done */
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    printf("counter=%d\n", counter);
    return counter == NTHREADS * (NTHREADS + 1) / 2 ? 0 : 1;
}

/* Thread-local variables in several threads (qGetTLSAddr) and a buffer to search (qSearch:memory).
 * Each thread sets its own tls_value to 100 + id and stops in checkpoint(). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define NTHREADS 3

__thread int tls_value = 7;
__thread char tls_name[16] = "initial";
char haystack[100000];
pthread_barrier_t barrier;

__attribute__((noinline)) void checkpoint(int id)
{
    __asm__ volatile("" ::"r"(id) : "memory"); /* LINE:checkpoint */
}

static void *worker(void *arg)
{
    int id = (int)(long)arg;
    tls_value = 100 + id;
    snprintf(tls_name, sizeof tls_name, "worker-%d", id);
    pthread_barrier_wait(&barrier);
    if (id == 1)
        checkpoint(id);
    pthread_barrier_wait(&barrier);
    return NULL;
}

int main(void)
{
    pthread_t threads[NTHREADS];
    memset(haystack, 'x', sizeof haystack);
    memcpy(haystack + 70000, "needle-in-haystack", 18);
    memcpy(haystack + 65530, "split#needle", 12); /* straddles the stub's 64 KiB read chunks */
    pthread_barrier_init(&barrier, NULL, NTHREADS + 1);
    tls_value = 1;
    for (long i = 0; i < NTHREADS; i++)
        pthread_create(&threads[i], NULL, worker, (void *)(i + 1));
    pthread_barrier_wait(&barrier);
    pthread_barrier_wait(&barrier);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(threads[i], NULL);
    printf("main tls_value=%d\n", tls_value);
    return 0;
}

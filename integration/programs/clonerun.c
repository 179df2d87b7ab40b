/* Threads created one by one while the ones before keep running: each worker counts to a
 * bound and exits; main creates NWORKERS of them, then joins them and prints the total. For
 * a breakpoint on the clone system call itself (gdb 14+ displaced-steps over it in non-stop,
 * which needs QThreadOptions' clone events). Bounded by a 60 s alarm. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#define NWORKERS 3
#define COUNT 3000000UL

volatile unsigned long counts[NWORKERS];

static void *work(void *arg)
{
    long id = (long)arg;
    for (unsigned long i = 0; i < COUNT; i++)
        counts[id]++;
    return NULL;
}

int main(void)
{
    pthread_t t[NWORKERS];
    alarm(60);
    for (long i = 0; i < NWORKERS; i++)
        pthread_create(&t[i], NULL, work, (void *)i);
    unsigned long total = 0;
    for (int i = 0; i < NWORKERS; i++) {
        pthread_join(t[i], NULL);
        total += counts[i];
    }
    printf("clonerun total=%lu\n", total);
    return 0;
}

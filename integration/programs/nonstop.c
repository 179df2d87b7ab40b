/* Four named threads count forever (bounded by a 60 s alarm); thread 0 calls marker()
 * once after a while, every thread calls hit() once and tick() often, for non-stop tests. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#define NTHREADS 4

volatile unsigned long counters[NTHREADS];
volatile int ready;

__attribute__((noinline)) void marker(int id) { __asm__ volatile("" ::: "memory"); (void)id; }
__attribute__((noinline)) void hit(int id) { __asm__ volatile("" ::: "memory"); (void)id; }
__attribute__((noinline)) void tick(int id) { __asm__ volatile("" ::: "memory"); (void)id; }

static void *spin(void *arg)
{
    int id = (int)(long)arg;
    char name[16];
    snprintf(name, sizeof name, "spin-%d", id);
    pthread_setname_np(pthread_self(), name);
    __sync_fetch_and_add(&ready, 1);
    while (ready < NTHREADS)
        ;
    hit(id);
    for (unsigned long i = 0;; i++) {
        counters[id]++;
        if (id == 0 && i == 2000000)
            marker(id);
        if ((i & 0xffff) == 0) {
            tick(id);
            usleep(100);
        }
    }
    return NULL;
}

int main(void)
{
    pthread_t t[NTHREADS];
    alarm(60);
    for (long i = 0; i < NTHREADS; i++)
        pthread_create(&t[i], NULL, spin, (void *)i);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    return 0;
}

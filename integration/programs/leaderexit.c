/* main calls pthread_exit while its worker goes on: the leader stays a zombie until the end. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

volatile int ticks;

__attribute__((noinline)) void tick(int i)
{
    ticks = i; /* LINE:tick */
}

static void *worker(void *arg)
{
    for (int i = 0; i < 3; i++) {
        tick(i);
        usleep(1000);
    }
    puts("worker done");
    return arg;
}

int main(void)
{
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    pthread_exit(NULL);
}

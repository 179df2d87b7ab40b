/* main sends SIGUSR1 to one named worker (pthread_kill); the worker's handler counts it. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static pthread_barrier_t barrier;
static volatile sig_atomic_t hits;
static volatile int done;

static void on_usr1(int sig) { (void)sig; hits++; /* LINE:handler */ }

static void *target(void *arg)
{
    pthread_setname_np(pthread_self(), "sig-target");
    pthread_barrier_wait(&barrier);
    while (!done)
        usleep(100);
    return arg;
}

int main(void)
{
    pthread_t t;
    signal(SIGUSR1, on_usr1);
    pthread_barrier_init(&barrier, NULL, 2);
    pthread_create(&t, NULL, target, NULL);
    pthread_barrier_wait(&barrier);
    pthread_kill(t, SIGUSR1);
    while (hits == 0)
        usleep(100);
    done = 1;
    pthread_join(t, NULL);
    printf("hits=%d\n", (int)hits);
    return 0;
}

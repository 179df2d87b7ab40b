/* Threads that come and go between two stops of the main thread:
 * a sleeper lives across the first two checkpoints, a short-lived thread is
 * created and joined between them. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

volatile int go;

static void *sleeper(void *arg)
{
    while (!go)
        usleep(1000);
    return arg;
}

static void *short_lived(void *arg) { return arg; }

__attribute__((noinline)) void checkpoint(int n)
{
    (void)n; /* LINE:checkpoint */
}

int main(void)
{
    pthread_t a, b;
    pthread_create(&a, NULL, sleeper, NULL);
    checkpoint(1); /* main + sleeper */
    pthread_create(&b, NULL, short_lived, NULL); /* LINE:create-b */
    pthread_join(b, NULL);
    checkpoint(2); /* short_lived came and went */
    go = 1;
    pthread_join(a, NULL);
    checkpoint(3); /* main alone */
    puts("threadlife done");
    return 0;
}

/* Two threads count in their own loops; a breakpoint in bump1 and
 * scheduler-locking show whether the other thread runs while one is stepped. */
#include <pthread.h>
#include <stdio.h>

volatile long counts[2];
volatile int stop;

__attribute__((noinline)) void bump0(void) { counts[0]++; }

__attribute__((noinline)) void bump1(void)
{
    counts[1]++; /* LINE:bump1 */
    counts[1]++; /* LINE:bump1-second */
    counts[1]++; /* LINE:bump1-third */
}

static void *spin0(void *arg) { while (!stop) bump0(); return arg; }
static void *spin1(void *arg) { while (!stop) bump1(); return arg; }

int main(void)
{
    pthread_t t0, t1;
    pthread_create(&t0, NULL, spin0, NULL);
    pthread_create(&t1, NULL, spin1, NULL);
    pthread_join(t0, NULL);
    pthread_join(t1, NULL);
    puts("schedlock done");
    return 0;
}

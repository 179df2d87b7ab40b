/* main calls pthread_exit while its worker goes on: the leader stays a zombie until the end.
 * The worker waits until the leader is a zombie, so every stop sees the same thread list. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

volatile int ticks;

__attribute__((noinline)) void tick(int i)
{
    ticks = i; /* LINE:tick */
}

static int leader_is_zombie(void)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)getpid());
    FILE *f = fopen(path, "r");
    if (!f)
        return 1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *end = strrchr(buf, ')');
    return !end || end[2] == 'Z';
}

static void *worker(void *arg)
{
    while (!leader_is_zombie())
        usleep(1000);
    for (int i = 0; i < 3; i++)
        tick(i);
    puts("worker done");
    return arg;
}

int main(void)
{
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    pthread_exit(NULL);
}

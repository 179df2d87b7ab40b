/* A non-leader thread execs argv[1] while another thread sleeps: after the exec only the
 * (renumbered) leader is left. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static char **args;

static void *execer(void *arg)
{
    execv(args[1], args + 1); /* LINE:exec */
    perror("execv");
    return arg;
}

static void *idle(void *arg)
{
    for (;;)
        pause();
    return arg;
}

int main(int argc, char **argv)
{
    pthread_t t1, t2;
    args = argv;
    if (argc < 2)
        return 2;
    pthread_create(&t1, NULL, idle, NULL);
    pthread_create(&t2, NULL, execer, NULL);
    pthread_join(t2, NULL);
    return 1;
}

/* Spins forever (until killed) so tests can interrupt it with Ctrl-C; prints its pid first. */
#include <stdio.h>
#include <unistd.h>

volatile unsigned long spins;

__attribute__((noinline)) void spin(void)
{
    for (;;) {
        spins++; /* LINE:spin */
    }
}

int main(void)
{
    printf("busy pid %d\n", (int)getpid());
    fflush(stdout);
    spin();
    return 0;
}

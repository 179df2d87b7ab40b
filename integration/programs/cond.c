/* Conditional breakpoints evaluated in the stub: hit() is called argv[1] times (default 10000).
 * Lines tagged "LINE:name" are looked up by the tests. */
#include <stdio.h>
#include <stdlib.h>

volatile long total;
const char *label = "cond";

__attribute__((noinline)) long hit(long i)
{
    total += i; /* LINE:hit */
    return total;
}

__attribute__((noinline)) long step_me(long a, long b)
{
    long x = a + b; /* LINE:step-first */
    long y = x * 2;
    for (int k = 0; k < 3; k++)
        y += k;
    return x + y; /* LINE:step-last */
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10000;
    for (long i = 0; i < n; i++)
        hit(i);
    total += step_me(1, 2); /* LINE:call-step */
    total += step_me(3, 4);
    printf("total=%ld\n", total); /* LINE:print */
    return 0;
}

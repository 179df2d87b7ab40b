/* Benchmark workload: a hot function called in a loop, and a 4 MiB buffer to dump.
 * argv[1] = number of calls to hot() (default 1000). */
#include <stdio.h>
#include <stdlib.h>

#define BUF (4 << 20)
unsigned char big[BUF];
volatile long sink;

__attribute__((noinline)) long hot(long i)
{
    sink += i + big[i & 4095]; /* LINE:hot */
    return sink;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000;
    for (long i = 0; i < BUF; i++)
        big[i] = (unsigned char)(i * 7);
    long acc = 0;
    for (long i = 0; i < n; i++) /* LINE:loop */
        acc += hot(i);
    printf("%ld\n", acc); /* LINE:done */
    return 0;
}

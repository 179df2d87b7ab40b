/* Tracepoints: traced(i) is called argv[1] times (default 10), each call changing globals the
 * tests collect. Lines tagged "LINE:name" are looked up by the tests. */
#include <stdio.h>
#include <stdlib.h>

struct point { long x, y; };
volatile long counter;
char buffer[64];
struct point pts[4];
const char message[] = "read-only text in .rodata";

__attribute__((noinline)) long traced(long i)
{
    long local = i * 3;
    counter += i; /* LINE:traced */
    buffer[i % 64] = (char)('a' + i % 26); /* LINE:store */
    pts[i % 4].x = i;
    pts[i % 4].y = -local;
    return counter + local;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10;
    for (long i = 0; i < n; i++)
        traced(i);
    printf("counter=%ld %s\n", counter, message); /* LINE:after */
    return 0;
}

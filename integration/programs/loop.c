/* Foundation test program: globals of each size, a hot function called in a loop, locals.
 * argv[1] = iterations (default 10), argv[2] = exit code (default 7).
 * Lines tagged "LINE:name" are looked up by the tests, so edit freely but keep the tags. */
#include <stdio.h>
#include <stdlib.h>

unsigned char g8 = 0x11;
unsigned short g16 = 0x2222;
unsigned int g32 = 0x33333333u;
unsigned long long g64 = 0x4444444444444444ull;
int counter;
long total;
char message[32] = "hello, gdbstub";
int table[8] = {1, 2, 3, 4, 5, 6, 7, 8};

__attribute__((noinline)) long hot(long i)
{
    long twice = i * 2; /* LINE:hot-body */
    counter++;          /* LINE:hot-counter */
    total += twice + g8;
    return total; /* LINE:hot-return */
}

__attribute__((noinline)) int add(int a, int b)
{
    int sum = a + b; /* LINE:add-body */
    return sum;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10;
    int code = argc > 2 ? atoi(argv[2]) : 7;
    long acc = 0;
    int local_int = 42;
    for (long i = 0; i < n; i++) { /* LINE:loop-head */
        acc += hot(i);              /* LINE:call-hot */
    }
    local_int = add(local_int, (int)n); /* LINE:call-add */
    printf("acc=%ld counter=%d local=%d\n", acc, counter, local_int); /* LINE:print */
    return code;
}

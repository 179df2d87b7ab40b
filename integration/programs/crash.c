/* Crashes with SIGSEGV three calls deep, so a backtrace has frames to show. */
#include <stdio.h>

int *volatile target_ptr; /* NULL */

__attribute__((noinline)) void level3(int x)
{
    *target_ptr = x; /* LINE:crash */
}

__attribute__((noinline)) void level2(int x) { level3(x + 1); }

__attribute__((noinline)) void level1(int x) { level2(x + 1); }

int main(void)
{
    puts("about to crash");
    fflush(stdout);
    level1(1);
    return 0;
}

/* Blocks in read() on a pipe nobody writes to, after saying so: a debugger interrupts it inside
   the system call and calls functions there (lldb's expressions, gdb's `call`). */
#include <stdio.h>
#include <unistd.h>

int calls;

__attribute__((noinline)) int answer(int x)
{
    calls++;
    return x * 2 + 1;
}

int main(void)
{
    int fds[2];
    char c;
    if (pipe(fds) != 0)
        return 2;
    printf("blocked pid %d\n", (int)getpid());
    fflush(stdout);
    ssize_t n = read(fds[0], &c, 1); /* LINE:read */
    printf("read returned %zd calls=%d\n", n, calls);
    return 0;
}

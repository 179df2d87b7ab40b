/* Execution-control corner cases (issue 14, items 1-2).
 * argv[1] = "perm": runs an int3 of its own (a permanent breakpoint, at perm_bp) and then
 *           the instruction at after_perm; exits 3.
 * argv[1] = "exit": ends with a raw exit_group(0) system call whose instruction is at
 *           exit_syscall, so a test can put a breakpoint on it; "exit-threads": the same
 *           with a second thread alive (blocked), so the leader's exit waits for it.
 * Anything else: exits 5. Lines tagged "LINE:name" are looked up by the tests. */
#include <pthread.h>
#include <string.h>
#include <unistd.h>

int never; /* stays 0: a breakpoint condition on it is always false */

static void permanent_breakpoint(void)
{
    __asm__ volatile(".globl perm_bp\nperm_bp: int3\n"
                     ".globl after_perm\nafter_perm: nop\n"); /* LINE:perm */
}

static void raw_exit_group(void)
{
#ifdef __x86_64__
    __asm__ volatile("mov $231, %%eax\n xor %%edi, %%edi\n"
                     ".globl exit_syscall\nexit_syscall: syscall\n" ::: "rax", "rdi", "memory");
#else
    __asm__ volatile("mov $252, %%eax\n xor %%ebx, %%ebx\n"
                     ".globl exit_syscall\nexit_syscall: int $0x80\n" ::: "eax", "ebx", "memory");
#endif
}

static void *blocked(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "perm") == 0) {
        permanent_breakpoint();
        return 3; /* LINE:perm-done */
    }
    if (argc > 1 && strcmp(argv[1], "exit-threads") == 0) {
        pthread_t other;
        pthread_create(&other, 0, blocked, 0);
        usleep(10000); /* LINE:threads-started */
        raw_exit_group();
    }
    if (argc > 1 && strcmp(argv[1], "exit") == 0)
        raw_exit_group();
    return 5;
}

/* Process events for the catch tests.  argv[1] chooses:
 *   vfork [PROG ARGS...]  vfork; the child execs PROG or _exits 7; exit code = the child's
 *   exec PROG ARGS...     exec PROG directly (a 64-bit program may exec a 32-bit one)
 *   write                 one write(2) to stdout, exit 0 */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "vfork") == 0) {
        pid_t pid = vfork(); /* LINE:vfork */
        if (pid == 0) {
            if (argc > 2)
                execv(argv[2], argv + 2);
            _exit(7);
        }
        int status = 0;
        if (pid < 0 || waitpid(pid, &status, 0) != pid)
            return 102;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 103; /* LINE:vfork-parent */
    }
    if (argc > 2 && strcmp(argv[1], "exec") == 0) {
        execv(argv[2], argv + 2); /* LINE:exec */
        perror("execv");
        return 101;
    }
    if (argc > 1 && strcmp(argv[1], "write") == 0) {
        write(1, "hello\n", 6); /* LINE:write */
        return 0;
    }
    return 2;
}

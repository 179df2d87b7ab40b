/* Forks; the child execs argv[1] (with the remaining args) or exits 3 when none is given.
 * The parent waits and exits with the child's exit code. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline)) int in_child(void) { return 3; /* LINE:in-child */ }

int main(int argc, char **argv)
{
    pid_t pid = fork(); /* LINE:fork */
    if (pid < 0) {
        perror("fork");
        return 100;
    }
    if (pid == 0) {
        if (argc > 1) {
            execv(argv[1], argv + 1);
            perror("execv");
            _exit(101);
        }
        _exit(in_child());
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        return 102;
    printf("child %d exited with %d\n", (int)pid, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 103; /* LINE:parent-exit */
}

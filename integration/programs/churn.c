/* Forks and execs all the time, so that process events race with the client's packets.
 * argv[1] = rounds (default 200); argv[2] = a program each child execs (default: the child
 * just exits); argv[3] = "exec": at the end the program execs argv[2] itself. Exits 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

volatile unsigned long rounds_done;

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? atol(argv[1]) : 200;
    for (long i = 0; i < rounds; i++) {
        pid_t pid = fork(); /* LINE:fork */
        if (pid < 0) {
            perror("fork");
            return 100;
        }
        if (pid == 0) {
            if (argc > 2)
                execl(argv[2], argv[2], (char *)0);
            _exit(0);
        }
        if (waitpid(pid, 0, 0) != pid)
            return 102;
        rounds_done++;
    }
    if (argc > 3 && strcmp(argv[3], "exec") == 0) {
        execl(argv[2], argv[2], (char *)0); /* LINE:exec */
        return 103;
    }
    return 0;
}

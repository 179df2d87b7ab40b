/* Raises SIGUSR1 and SIGALRM at itself and handles both; exit code = handled count (2). */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

volatile sig_atomic_t usr1_count;
volatile sig_atomic_t alrm_count;

static void on_usr1(int sig) { (void)sig; usr1_count++; /* LINE:on-usr1 */ }
static void on_alrm(int sig) { (void)sig; alrm_count++; /* LINE:on-alrm */ }

int main(void)
{
    signal(SIGUSR1, on_usr1);
    signal(SIGALRM, on_alrm);
    raise(SIGUSR1);  /* LINE:raise-usr1 */
    raise(SIGALRM);  /* LINE:raise-alrm */
    printf("usr1=%d alrm=%d\n", (int)usr1_count, (int)alrm_count); /* LINE:report */
    return usr1_count + alrm_count;
}

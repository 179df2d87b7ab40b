/* Hardware watchpoints and breakpoints: globals of each width written then read, a stack variable
 * that goes out of scope, a global written by a worker thread, five globals for five watchpoints,
 * a misaligned 8-byte field (two debug-register slots).
 * Lines tagged "LINE:name" are looked up by the tests. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

unsigned char w8 = 0x11;
unsigned short w16 = 0x2222;
unsigned int w32 = 0x33333333u;
unsigned long long w64 = 0x4444444444444444ull;
volatile int shared;
int g1, g2, g3, g4, g5;
struct packed {
    char pad[3];
    unsigned long long value;
} __attribute__((packed)) pk;
volatile long sink;

__attribute__((noinline)) void writes(void)
{
    w8 = 0x81;                  /* LINE:write8 */
    w16 = 0x8282;               /* LINE:write16 */
    w32 = 0x83838383u;          /* LINE:write32 */
    w64 = 0x8484848484848484ull; /* LINE:write64 */
    pk.value = 0x1122334455667788ull; /* LINE:write-packed */
}

__attribute__((noinline)) long reads(void)
{
    long sum = w8;  /* LINE:read8 */
    sum += w16;     /* LINE:read16 */
    sum += w32;     /* LINE:read32 */
    sum += (long)w64; /* LINE:read64 */
    return sum;
}

__attribute__((noinline)) int scoped(int n)
{
    int local = 0; /* LINE:scoped-start */
    for (int i = 0; i < n; i++)
        local += i; /* LINE:scoped-add */
    return local;   /* LINE:scoped-return */
}

static void *worker(void *arg)
{
    shared = 42; /* LINE:worker-write */
    return arg;
}

__attribute__((noinline)) void five(void)
{
    g1 = 1; /* LINE:five */
    g2 = 2;
    g3 = 3;
    g4 = 4;
    g5 = 5;
}

__attribute__((noinline)) int plain(int x)
{
    return x * 3; /* LINE:plain */
}

/* Code nobody can write, not even through /proc/PID/mem: a shared read-only mapping of a file.
 * Only a hardware breakpoint can stop there. */
typedef int (*code_t)(void);
code_t readonly_code;

__attribute__((noinline)) void code_ready(void)
{
    sink += 1; /* LINE:code-ready */
}

static int run_readonly_code(void)
{
    static const unsigned char insns[] = {0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3}; /* mov $42,%eax; ret */
    char path[] = "/tmp/gdbstub-watch-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, insns, sizeof insns) != (ssize_t)sizeof insns)
        return -1;
    close(fd);
    fd = open(path, O_RDONLY);
    unlink(path);
    void *map = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return -1;
    readonly_code = (code_t)map;
    code_ready();
    return readonly_code();
}

int main(void)
{
    writes();
    sink = reads();
    sink += scoped(3); /* LINE:call-scoped */
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    pthread_join(t, NULL);
    five();
    sink += plain(2);
    sink += plain(3);
    int code = run_readonly_code();
    printf("sink=%ld shared=%d g5=%d code=%d\n", sink, shared, g5, code); /* LINE:print */
    return 0;
}

/* Loads known values into a general, an x87, an SSE, an AVX and an AVX-512
 * register, stops on a global label with nothing but a nop between the loads
 * and the stores, then prints what the registers held after the stop.  A
 * debugger that changes $eax, $st0, $xmm1, $ymm2 or $k1 at the label changes
 * what this program prints.  Same source for 64- and 32-bit builds.
 *
 *   break *regs_stop_basic / *regs_stop_avx / *regs_stop_avx512
 *
 * With the argument "segv" it instead dereferences the address 0x1234 (a
 * SIGSEGV whose $_siginfo names that address). With "pause" it sleeps in
 * pause() until SIGALRM arrives: a thread stopped inside a system call, where
 * gdb's `call add_one(41)` only works if its orig_eax = -1 reaches the kernel
 * (otherwise the kernel "restarts" the syscall two bytes before add_one).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifdef __x86_64__
#define ACC "rax"
#else
#define ACC "eax"
#endif

__attribute__((noinline, target("sse2"))) static void basic(void)
{
    long acc_in = 7, acc_out = 0;
    long double st_in = 1.5L, st_out = 0;
    double xmm_in[2] = {2.25, -1.0}, xmm_out[2] = {0, 0};

    __asm__ volatile(
        "fldt %[st_in]\n\t"
        "movupd %[xmm_in], %%xmm1\n\t"
        "mov %[acc_in], %%" ACC "\n\t"
        ".globl regs_stop_basic\n"
        "regs_stop_basic:\n\t"
        "nop\n\t"
        "mov %%" ACC ", %[acc_out]\n\t"
        "movupd %%xmm1, %[xmm_out]\n\t"
        "fstpt %[st_out]\n\t"
        : [acc_out] "=m"(acc_out), [st_out] "=m"(st_out), [xmm_out] "=m"(xmm_out)
        : [acc_in] "m"(acc_in), [st_in] "m"(st_in), [xmm_in] "m"(xmm_in)
        : ACC, "xmm1", "memory");
    printf("acc=%ld st0=%.4Lf xmm1=%.4f,%.4f\n", acc_out, st_out, xmm_out[0], xmm_out[1]);
}

__attribute__((noinline, target("avx"))) static void avx(void)
{
    int32_t in[8] = {1, 2, 3, 4, 5, 6, 7, 8}, out[8];

    __asm__ volatile(
        "vmovdqu %[in], %%ymm2\n\t"
        ".globl regs_stop_avx\n"
        "regs_stop_avx:\n\t"
        "nop\n\t"
        "vmovdqu %%ymm2, %[out]\n\t"
        "vzeroupper\n\t"
        : [out] "=m"(out)
        : [in] "m"(in)
        : "xmm2", "memory");
    printf("ymm2=");
    for (int i = 0; i < 8; i++)
        printf("%d%s", (int)out[i], i < 7 ? "," : "\n");
}

__attribute__((noinline, target("avx512f"))) static void avx512(void)
{
    uint16_t k_in = 0x5a5a, k_out = 0;
    int32_t in[16], out[16];

    for (int i = 0; i < 16; i++)
        in[i] = 100 + i;
    __asm__ volatile(
        "kmovw %[k_in], %%k1\n\t"
        "vmovdqu32 %[in], %%zmm3\n\t"
        ".globl regs_stop_avx512\n"
        "regs_stop_avx512:\n\t"
        "nop\n\t"
        "kmovw %%k1, %[k_out]\n\t"
        "vmovdqu32 %%zmm3, %[out]\n\t"
        "vzeroupper\n\t"
        : [k_out] "=m"(k_out), [out] "=m"(out)
        : [k_in] "m"(k_in), [in] "m"(in)
        : "xmm3", "k1", "memory");
    printf("k1=0x%x zmm3=", (unsigned)k_out);
    for (int i = 0; i < 16; i++)
        printf("%d%s", (int)out[i], i < 15 ? "," : "\n");
}

__attribute__((noinline)) int add_one(int x)
{
    return x + 1;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "pause") == 0) {
        alarm(1);
        pause(); /* LINE:pause */
        return add_one(0);
    }
    if (argc > 1 && strcmp(argv[1], "segv") == 0) {
        volatile int *bad = (volatile int *)(uintptr_t)0x1234;
        return *bad; /* LINE:segv */
    }
    __builtin_cpu_init();
    basic();
    if (__builtin_cpu_supports("avx"))
        avx();
    if (__builtin_cpu_supports("avx512f"))
        avx512();
    return 0;
}

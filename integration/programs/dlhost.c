/* Calls puts, then loads libplugin.so (next to this program) with dlopen and calls into it:
 * a pending breakpoint on plugin_entry must take once the library appears. */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifdef __i386__
#define PLUGIN "libplugin-32.so"
#else
#define PLUGIN "libplugin.so"
#endif

__attribute__((noinline)) int loaded(void *handle)
{
    return handle != NULL; /* LINE:loaded */
}

int main(void)
{
    char path[4096];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - sizeof PLUGIN - 1);
    if (n <= 0)
        return 2;
    path[n] = '\0';
    strcpy(strrchr(path, '/') + 1, PLUGIN);
    puts("dlhost: loading the plugin"); /* LINE:puts */
    void *handle = dlopen(path, RTLD_NOW);
    if (!loaded(handle)) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    int (*entry)(int) = (int (*)(int))dlsym(handle, "plugin_entry");
    int result = entry(21); /* LINE:call */
    printf("dlhost: result %d\n", result);
    dlclose(handle);
    return 0;
}

/* A shared library that dlhost.c loads with dlopen (built as build/libplugin.so and -32.so). */
#include <stdio.h>

int plugin_calls;

int plugin_entry(int value)
{
    plugin_calls++; /* LINE:plugin_entry */
    printf("plugin_entry(%d)\n", value);
    return value * 2;
}

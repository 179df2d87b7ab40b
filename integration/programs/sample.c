/* The demo program: a struct, a loop and a function with arguments. */
#include <stdio.h>

struct point {
    int x;
    int y;
    const char *label;
};

struct point origin = {0, 0, "origin"};

__attribute__((noinline)) int distance2(struct point *a, int dx, int dy)
{
    int ddx = a->x + dx;       /* LINE:distance2 */
    int ddy = a->y + dy;
    return ddx * ddx + ddy * ddy;
}

int main(void)
{
    struct point p = {3, 4, "p"};
    int sum = 0;
    for (int i = 0; i < 3; i++) {
        sum += distance2(&p, i, -i); /* LINE:call */
    }
    printf("%s: sum=%d (origin %s)\n", p.label, sum, origin.label);
    return 0;
}

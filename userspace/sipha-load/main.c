/* sipha-load — load generator and failover prober.  Not built yet: it
 * arrives with the load-tools work; until then it says so and exits 2. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("usage: sipha-load MODE [options]\n"
		       "sipha-load is not implemented in this build; use sipp (bench/) "
		       "meanwhile.\n");
		return 0;
	}
	fprintf(stderr,
		"usage: sipha-load MODE [options]\n"
		"sipha-load is not implemented in this build; use sipp (bench/) meanwhile.\n");
	return 2;
}

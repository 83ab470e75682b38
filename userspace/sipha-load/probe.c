#include "sipha-load/load.h"
#include <stdio.h>
int probe_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "sipha-load probe: not yet\n");
	return 2;
}

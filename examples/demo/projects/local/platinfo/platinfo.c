/*
 * platinfo: print the platform's name and buildstamp, and the version of the zlib it was
 * linked with (the demo's own zlib, built by the extra component, carries a patch marker).
 */
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#ifndef ROOT
#define ROOT ""
#endif

static int first_line(const char *path, const char *prefix, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	char line[256];
	size_t plen = strlen(prefix);

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof (line), f) != NULL) {
		if (strncmp(line, prefix, plen) == 0) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(buf, len, "%s", line + plen);
			fclose(f);
			return 0;
		}
	}
	fclose(f);
	return -1;
}

int main(int argc, char **argv)
{
	char stamp[64] = "unknown", name[128] = "unknown";

	(void) first_line(ROOT "/etc/version/platform", "", stamp, sizeof (stamp));
	(void) first_line(ROOT "/etc/release", "NAME=", name, sizeof (name));
	if (argc > 1 && strcmp(argv[1], "--zlib") == 0) {
		printf("%s\n", zlibVersion());
		return 0;
	}
	printf("platform %s %s\n", name, stamp);
	printf("zlib %s (compiled against %s)\n", zlibVersion(), ZLIB_VERSION);
	return strcmp(zlibVersion(), ZLIB_VERSION) != 0;
}

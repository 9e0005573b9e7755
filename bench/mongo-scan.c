/*
 * The plain cursor scan bench/mongo-dump.py compares Lifeboat's MongoDB dump with:
 * find({}) over one whole collection with libmongoc's defaults (no options, the
 * server's default batch size), every document discarded. Prints documents and bytes.
 *
 *   cc -O2 -o mongo-scan bench/mongo-scan.c $(pkg-config --cflags --libs libmongoc-1.0)
 *   MONGO_SCAN_URI='mongodb://...' ./mongo-scan DB COLLECTION
 *
 * The URI is read from the environment, so that its password is in no argv.
 */
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	const char *uri = getenv("MONGO_SCAN_URI");
	bson_error_t be;
	const bson_t *doc;
	unsigned long long docs = 0, bytes = 0;

	if (argc != 3 || !uri) {
		fprintf(stderr, "usage: MONGO_SCAN_URI=... mongo-scan DB COLLECTION\n");
		return 2;
	}
	mongoc_init();
	mongoc_client_t *client = mongoc_client_new(uri);
	if (!client) {
		fprintf(stderr, "mongo-scan: invalid URI\n");
		return 1;
	}
	mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
	mongoc_collection_t *coll = mongoc_client_get_collection(client, argv[1], argv[2]);
	bson_t filter = BSON_INITIALIZER;
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, NULL, NULL);
	while (mongoc_cursor_next(cur, &doc)) {
		docs++;
		bytes += doc->len;
	}
	int rc = 0;
	if (mongoc_cursor_error(cur, &be)) {
		fprintf(stderr, "mongo-scan: %s\n", be.message);
		rc = 1;
	}
	printf("%llu documents, %llu bytes\n", docs, bytes);
	mongoc_cursor_destroy(cur);
	bson_destroy(&filter);
	mongoc_collection_destroy(coll);
	mongoc_client_destroy(client);
	mongoc_cleanup();
	return rc;
}

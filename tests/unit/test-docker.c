/*
 * Unit tests for the pure parsers of docker.c and docker-exec.c: API version negotiation,
 * the mountinfo self detection, labels, names, states, list picks, Swarm replicas, exec
 * ends, error messages.
 */
#include "unit.h"

#include <jansson.h>

#include "docker.h"
#include "strbuf.h"

#define ID_A "4f2a9c0e1b7d3a5f6e8c9b0a1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e"
#define ID_B "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static json_t *parse(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &je);

	if (!j)
		fail_msg("bad test JSON '%s': %s", text, je.text);
	return j;
}

/* ---- GET /version ---- */

static void expect_api(const char *answer, int want_r, const char *want_api)
{
	json_t *j = parse(answer);
	char api[16] = "unset";

	int r = docker_api_negotiate(j, api, sizeof(api));
	if (r != want_r)
		fail_msg("%s: got %d, want %d", answer, r, want_r);
	assert_string_equal(api, want_api);
	json_decref(j);
}

static void test_api_negotiate(void **state LB_UNUSED)
{
	/* Engine 24 announces 1.43, 25 says 1.44, 26 says 1.45, 27 says 1.46/1.47. */
	expect_api("{\"Version\":\"24.0.7\",\"ApiVersion\":\"1.43\",\"MinAPIVersion\":\"1.12\"}", 0,
		   "1.43");
	expect_api("{\"ApiVersion\":\"1.41\"}", 0, "1.41");
	expect_api("{\"ApiVersion\":\"1.45\"}", 0, "1.45");
	expect_api("{\"ApiVersion\":\"1.47\"}", 0, "1.45");
	expect_api("{\"ApiVersion\":\"1.999\"}", 0, "1.45");
	/* Too old, or a major we do not know: untouched. */
	expect_api("{\"ApiVersion\":\"1.40\"}", -ENOTSUP, "unset");
	expect_api("{\"ApiVersion\":\"1.12\"}", -ENOTSUP, "unset");
	expect_api("{\"ApiVersion\":\"2.0\"}", -ENOTSUP, "unset");
	expect_api("{\"ApiVersion\":\"0.50\"}", -ENOTSUP, "unset");
	/* Not an engine's answer at all. */
	expect_api("{\"Version\":\"24.0.7\"}", -EPROTO, "unset");
	expect_api("{\"ApiVersion\":\"latest\"}", -EPROTO, "unset");
	expect_api("{\"ApiVersion\":\"1\"}", -EPROTO, "unset");
	expect_api("{\"ApiVersion\":1.43}", -EPROTO, "unset");
	expect_api("{\"message\":\"page not found\"}", -EPROTO, "unset");
	expect_api("[\"1.43\"]", -EPROTO, "unset");
	expect_api("\"1.43\"", -EPROTO, "unset");
	expect_api("null", -EPROTO, "unset");

	char api[16] = "unset";
	assert_int_equal(docker_api_negotiate(NULL, api, sizeof(api)), -EPROTO);
	assert_string_equal(api, "unset");
}

/* ---- /proc/self/mountinfo ---- */

static bool mountinfo(const char *text, char id[65])
{
	memset(id, 'X', 64);
	id[64] = '\0';
	return docker_mountinfo_id(text, id);
}

static void test_mountinfo_in_a_container(void **state LB_UNUSED)
{
	/* What a container on a typical ext4 host sees (fields abridged after the fs type). */
	const char *text =
		"612 545 0:52 / / rw,relatime master:300 - overlay overlay rw,lowerdir=/var/lib/"
		"docker/overlay2/l/ABC:/var/lib/docker/overlay2/l/DEF,upperdir=/var/lib/docker/"
		"overlay2/0f/diff,workdir=/var/lib/docker/overlay2/0f/work\n"
		"613 612 0:55 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
		"620 612 254:1 /var/lib/docker/containers/" ID_A "/resolv.conf /etc/resolv.conf "
		"rw,relatime - ext4 /dev/vda1 rw\n"
		"621 612 254:1 /var/lib/docker/containers/" ID_A "/hostname /etc/hostname "
		"rw,relatime - ext4 /dev/vda1 rw\n"
		"622 612 254:1 /var/lib/docker/containers/" ID_A "/hosts /etc/hosts rw,relatime "
		"- ext4 /dev/vda1 rw\n";
	char id[65];

	assert_true(mountinfo(text, id));
	assert_string_equal(id, ID_A);

	/* /var/lib/docker on a file system of its own: the root starts at /containers/. */
	assert_true(mountinfo("30 20 8:17 /containers/" ID_B "/hostname /etc/hostname rw - "
			      "xfs /dev/sdb1 rw",
			      id));
	assert_string_equal(id, ID_B);

	/* Rootless Docker keeps its data under the user's home. */
	assert_true(mountinfo("1 0 0:40 /home/u/.local/share/docker/containers/" ID_B
			      "/hostname /etc/hostname rw - ext4 /dev/sda2 rw\n",
			      id));
	assert_string_equal(id, ID_B);
}

static void test_mountinfo_not_ours(void **state LB_UNUSED)
{
	char id[65];

	/* On a host: another container's hostname file, but not mounted on /etc/hostname. */
	assert_false(mountinfo("100 29 254:1 /var/lib/docker/containers/" ID_A "/hostname "
			       "/var/lib/docker/containers/" ID_A
			       "/mounts/x rw - ext4 /dev/vda1 rw\n",
			       id));
	/* Kubernetes or Podman: /etc/hostname from somewhere else. */
	assert_false(
		mountinfo("5 1 0:30 /pods/abc/etc-hosts /etc/hostname rw - tmpfs tmpfs rw\n", id));
	assert_false(mountinfo("5 1 0:30 /userdata/hostname /etc/hostname rw - tmpfs t rw\n", id));
	/* Ids that are not 64 lower-case hex digits, or another file of the container. */
	assert_false(mountinfo("5 1 0:30 /containers/" ID_A "0/hostname /etc/hostname rw\n", id));
	assert_false(mountinfo("5 1 0:30 /containers/4F2A9C0E1B7D3A5F6E8C9B0A1D2E3F4A5B6C7D8E9F0A1B"
			       "2C3D4E5F6A7B8C9D0E/hostname /etc/hostname rw\n",
			       id));
	assert_false(mountinfo("5 1 0:30 /containers/" ID_A "/hostname2 /etc/hostname rw\n", id));
	assert_false(mountinfo("5 1 0:30 /containers/" ID_A "/hosts /etc/hostname rw\n", id));
	assert_false(mountinfo("5 1 0:30 /containers/" ID_A "/hostname /etc/hostname2 rw\n", id));
	/* Too few fields, empty, blank lines. */
	assert_false(mountinfo("5 1 /containers/" ID_A "/hostname\n", id));
	assert_false(mountinfo("", id));
	assert_false(mountinfo("\n\n\n", id));
	/* Nothing was written on failure. */
	assert_int_equal(strspn(id, "X"), 64);
}

static void test_mountinfo_first_match_and_odd_lines(void **state LB_UNUSED)
{
	char id[65];

	/* The first /etc/hostname mount counts; blank and short lines in between do not hurt. */
	assert_true(mountinfo("\n1 2\n"
			      "9 1 0:1 /containers/" ID_B "/hostname /etc/hostname rw - ext4 a rw\n"
			      "9 1 0:1 /containers/" ID_A
			      "/hostname /etc/hostname rw - ext4 a rw\n",
			      id));
	assert_string_equal(id, ID_B);

	/* A root longer than the parser keeps is not read as a match. */
	struct strbuf sb = STRBUF_INIT;
	strbuf_addstr(&sb, "9 1 0:1 /");
	for (int i = 0; i < 5000; i++)
		strbuf_addch(&sb, 'a');
	strbuf_addstr(&sb, "/containers/" ID_A "/hostname /etc/hostname rw\n");
	assert_false(mountinfo(sb.buf, id));
	strbuf_release(&sb);
}

/* ---- containers: inspect and list entries ---- */

static const char *inspect_json =
	"{\"Id\":\"" ID_A "\",\"Created\":\"2024-05-01T10:00:00.123456789Z\","
	"\"Path\":\"docker-entrypoint.sh\",\"Args\":[\"postgres\"],"
	"\"State\":{\"Status\":\"running\",\"Running\":true,\"Paused\":false,\"Pid\":4242,"
	"\"ExitCode\":0,\"StartedAt\":\"2024-05-01T10:00:01Z\"},"
	"\"Name\":\"/shop-db-1\",\"RestartCount\":0,"
	"\"Config\":{\"Hostname\":\"4f2a9c0e1b7d\",\"Image\":\"postgres:16\","
	"\"Labels\":{\"com.docker.compose.project\":\"shop\","
	"\"com.docker.compose.service\":\"db\","
	"\"com.docker.compose.depends_on\":\"\"}}}";

static const char *list_json =
	"[{\"Id\":\"" ID_B "\",\"Names\":[\"/shop-app-1\"],\"Image\":\"shop:latest\","
	"\"State\":\"running\",\"Status\":\"Up 2 hours\","
	"\"Labels\":{\"com.docker.compose.project\":\"shop\","
	"\"com.docker.compose.service\":\"app\","
	"\"com.docker.compose.depends_on\":\"db:service_healthy:false\"}},"
	"{\"Id\":\"" ID_A "\",\"Names\":[\"/shop-db-1\"],\"State\":\"exited\","
	"\"Status\":\"Exited (0) 5 minutes ago\",\"Labels\":{}}]";

static void test_inspect_and_list_fields(void **state LB_UNUSED)
{
	json_t *c = parse(inspect_json), *l = parse(list_json);
	json_t *l0 = json_array_get(l, 0), *l1 = json_array_get(l, 1);

	assert_string_equal(docker_label(c, "com.docker.compose.project"), "shop");
	assert_string_equal(docker_label(c, "com.docker.compose.service"), "db");
	assert_string_equal(docker_label(c, "com.docker.compose.depends_on"), "");
	assert_null(docker_label(c, "com.docker.swarm.service.id"));
	assert_string_equal(docker_container_name(c), "shop-db-1");
	assert_true(docker_container_running(c));

	assert_string_equal(docker_label(l0, "com.docker.compose.depends_on"),
			    "db:service_healthy:false");
	assert_null(docker_label(l1, "com.docker.compose.project"));
	assert_string_equal(docker_container_name(l0), "shop-app-1");
	assert_true(docker_container_running(l0));
	assert_false(docker_container_running(l1));
	json_decref(c);
	json_decref(l);
}

static void test_fields_of_odd_shapes(void **state LB_UNUSED)
{
	static const char *const odd[] = { "null",
					   "[]",
					   "{}",
					   "\"running\"",
					   "{\"Labels\":null,\"Name\":null,\"State\":null}",
					   "{\"Labels\":[\"a=b\"],\"Names\":\"/x\",\"State\":7}",
					   "{\"Config\":{\"Labels\":{\"k\":1}},\"Names\":[]}",
					   "{\"State\":{\"Running\":\"true\"}}" };

	for (size_t i = 0; i < ARRAY_SIZE(odd); i++) {
		json_t *j = parse(odd[i]);
		assert_null(docker_label(j, "k"));
		assert_null(docker_container_name(j));
		assert_false(docker_container_running(j));
		json_decref(j);
	}
	assert_null(docker_label(NULL, "k"));
	assert_null(docker_container_name(NULL));
	assert_false(docker_container_running(NULL));

	/* A name without Docker's '/' stays as it is; list labels win over Config.Labels. */
	json_t *j = parse("{\"Name\":\"plain\",\"Labels\":{\"k\":\"top\"},"
			  "\"Config\":{\"Labels\":{\"k\":\"config\"}},\"State\":\"Running\"}");
	assert_string_equal(docker_container_name(j), "plain");
	assert_string_equal(docker_label(j, "k"), "top");
	assert_false(docker_container_running(j)); /* the engine spells it "running" */
	json_decref(j);
	j = parse("{\"Name\":\"/\"}");
	assert_string_equal(docker_container_name(j), "");
	json_decref(j);
}

static void expect_pick(const char *list, const char *want)
{
	json_t *j = parse(list);
	const char *got = docker_list_pick(j);

	if (want ? !got || strcmp(got, want) : got != NULL)
		fail_msg("%s: picked '%s', want '%s'", list, got ? got : "(none)",
			 want ? want : "(none)");
	json_decref(j);
}

static void test_list_pick(void **state LB_UNUSED)
{
	expect_pick("[]", NULL);
	expect_pick("{}", NULL);
	expect_pick("null", NULL);
	expect_pick("[{\"State\":\"running\"},{\"Id\":5}]", NULL);
	expect_pick("[{\"Id\":\"a\",\"State\":\"exited\"}]", "a");
	/* None running: the first one. */
	expect_pick("[{\"Id\":\"a\",\"State\":\"exited\"},{\"Id\":\"b\",\"State\":\"created\"}]",
		    "a");
	/* A running one wins over stopped ones, wherever it is. */
	expect_pick("[{\"Id\":\"a\",\"State\":\"exited\"},{\"Id\":\"b\",\"State\":\"running\"},"
		    "{\"Id\":\"c\",\"State\":\"exited\"}]",
		    "b");
	/* Several running (scaled service): the last one listed. */
	expect_pick("[{\"Id\":\"a\",\"State\":\"running\"},{\"Id\":\"b\",\"State\":\"running\"}]",
		    "b");
	/* Entries without an id are skipped. */
	expect_pick("[{\"State\":\"running\"},{\"Id\":\"b\"},{\"Id\":null,\"State\":\"running\"}]",
		    "b");
	expect_pick(list_json, ID_B);
}

/* ---- Swarm services and exec ---- */

static void test_swarm_replicas(void **state LB_UNUSED)
{
	json_t *j =
		parse("{\"ID\":\"9mnpnzenvg8p8tdbtq4wvbkcz\",\"Version\":{\"Index\":19},"
		      "\"Spec\":{\"Name\":\"web\",\"Mode\":{\"Replicated\":{\"Replicas\":3}}}}");
	uint64_t n = 42;

	assert_true(docker_swarm_replicas(j, &n));
	assert_int_equal(n, 3);
	json_decref(j);

	static const char *const not_replicated[] = {
		"{\"Spec\":{\"Mode\":{\"Global\":{}}}}",
		"{\"Spec\":{\"Mode\":{\"Replicated\":{}}}}",
		"{\"Spec\":{\"Mode\":{\"Replicated\":{\"Replicas\":\"3\"}}}}",
		"{\"Spec\":{\"Mode\":{\"Replicated\":{\"Replicas\":3.0}}}}",
		"{\"Spec\":{\"Mode\":[]}}",
		"{\"message\":\"service web not found\"}",
		"[]",
	};
	for (size_t i = 0; i < ARRAY_SIZE(not_replicated); i++) {
		j = parse(not_replicated[i]);
		n = 42;
		assert_false(docker_swarm_replicas(j, &n));
		assert_int_equal(n, 42);
		json_decref(j);
	}
	j = parse("{\"Spec\":{\"Mode\":{\"Replicated\":{\"Replicas\":0}}}}");
	assert_true(docker_swarm_replicas(j, &n));
	assert_int_equal(n, 0);
	json_decref(j);
}

static void expect_exec(const char *answer, bool want_ended, int want_code)
{
	json_t *j = parse(answer);
	int code = -999;

	if (docker_exec_ended(j, &code) != want_ended)
		fail_msg("%s: ended should be %d", answer, want_ended);
	assert_int_equal(code, want_code);
	json_decref(j);
}

static void test_exec_ended(void **state LB_UNUSED)
{
	expect_exec("{\"ID\":\"e1\",\"Running\":false,\"ExitCode\":0,\"Pid\":0,"
		    "\"ProcessConfig\":{\"entrypoint\":\"pg_dump\",\"arguments\":[\"-Fc\"]},"
		    "\"ContainerID\":\"" ID_A "\"}",
		    true, 0);
	expect_exec("{\"Running\":false,\"ExitCode\":1}", true, 1);
	expect_exec("{\"Running\":false,\"ExitCode\":137}", true, 137);
	expect_exec("{\"ExitCode\":2}", true, 2);
	/* Still running (the code is not known yet), or no code recorded yet. */
	expect_exec("{\"Running\":true,\"ExitCode\":0}", false, -999);
	expect_exec("{\"Running\":false,\"ExitCode\":null}", false, -999);
	expect_exec("{\"Running\":false}", false, -999);
	expect_exec("{\"Running\":false,\"ExitCode\":\"0\"}", false, -999);
	expect_exec("{\"message\":\"No such exec instance: e1\"}", false, -999);
	expect_exec("[]", false, -999);
}

static void test_message(void **state LB_UNUSED)
{
	json_t *j = parse("{\"message\":\"No such container: shop-db-1\"}");
	assert_string_equal(docker_message(j), "No such container: shop-db-1");
	json_decref(j);

	static const char *const none[] = { "{}", "{\"message\":null}", "{\"message\":404}", "[]",
					    "\"text\"" };
	for (size_t i = 0; i < ARRAY_SIZE(none); i++) {
		j = parse(none[i]);
		assert_string_equal(docker_message(j), "");
		json_decref(j);
	}
	assert_string_equal(docker_message(NULL), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_api_negotiate),
		cmocka_unit_test(test_mountinfo_in_a_container),
		cmocka_unit_test(test_mountinfo_not_ours),
		cmocka_unit_test(test_mountinfo_first_match_and_odd_lines),
		cmocka_unit_test(test_inspect_and_list_fields),
		cmocka_unit_test(test_fields_of_odd_shapes),
		cmocka_unit_test(test_list_pick),
		cmocka_unit_test(test_swarm_replicas),
		cmocka_unit_test(test_exec_ended),
		cmocka_unit_test(test_message),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

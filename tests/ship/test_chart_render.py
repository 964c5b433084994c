"""The chart as rendered: lint-clean, safe defaults, and clear refusals of wrong values (no cluster)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.ship.chart import CHART, helm, manifests, template


def _rendered(*sets: str) -> list[dict[str, Any]]:
    result = template(*sets)
    assert result.returncode == 0, result.stderr
    return manifests(result.stdout)


def _pod(objs: list[dict[str, Any]], component: str) -> dict[str, Any]:
    deployment = next(o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"].endswith(component))
    return deployment["spec"]["template"]["spec"]


@pytest.mark.parametrize("values", [None, CHART / "ci" / "values.yaml"], ids=["defaults", "ci-values"])
def test_helm_lint_strict_is_clean(values):
    args = ["lint", "--strict", str(CHART)] + (["-f", str(values)] if values else [])
    result = helm(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout


def _secret_sources(pod: dict[str, Any]) -> list[dict[str, Any]]:
    """The Secrets projected into the pod's secrets volume, and where that volume is mounted."""
    volume = next(v for v in pod["volumes"] if v["name"] == "secrets")
    return [source["secret"] for source in volume["projected"]["sources"]]


def test_each_pod_gets_only_its_own_secret():
    objs = _rendered()
    web, worker = _pod(objs, "-web"), _pod(objs, "-worker")
    redis = {"name": "mergeway-redis", "items": [{"key": "redis-password", "path": "MERGEWAY_REDIS_PASSWORD"}]}
    assert _secret_sources(web) == [{"name": "mergeway-web"}, redis]
    assert _secret_sources(worker) == [{"name": "mergeway-worker"}, redis]
    # The web edge holds no cluster credentials: no token, no kubeconfig.
    assert web["automountServiceAccountToken"] is False
    assert "KUBECONFIG" not in {e["name"] for e in web["containers"][0]["env"]}
    assert not any("kubeconfig" in str(v) for v in web["volumes"])


def test_restricted_pod_security_and_writable_paths_are_emptydirs():
    objs = _rendered()
    for component in ("-web", "-worker", "-beat"):
        pod = _pod(objs, component)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        ctx = pod["containers"][0]["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"] == {"drop": ["ALL"]}
        empty = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"] if m["name"] in empty}
        assert "/tmp" in mounts
    assert {"/var/cache/mergeway", "/home/mergeway"} <= {
        m["mountPath"] for m in _pod(objs, "-worker")["containers"][0]["volumeMounts"]
    }


def test_policy_is_mounted_where_merge_way_policy_file_points():
    objs = _rendered()
    config = next(o for o in objs if o["kind"] == "ConfigMap")
    assert "github:acme/*" in config["data"]["policy.yaml"]
    for component in ("-web", "-worker"):
        container = _pod(objs, component)["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        mount = next(m for m in container["volumeMounts"] if m["name"] == "policy")
        assert env["MERGEWAY_POLICY_FILE"] == f"{mount['mountPath']}/policy.yaml"


def test_no_secret_is_an_environment_variable_every_one_is_a_file_read_at_start():
    """A variable stays in /proc/<pid>/environ (PID 1's too) for the life of the pod: a renderer,
    or anything else running as the pod's user, could read it back. Files are read once."""
    objs = _rendered()
    for component in ("-web", "-worker"):
        container = _pod(objs, component)["containers"][0]
        assert "envFrom" not in container
        from_secrets = [e for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})]
        assert not from_secrets, "no variable is filled from a Secret"
        env = {e["name"]: e.get("value") for e in container["env"]}
        mount = next(m for m in container["volumeMounts"] if m["name"] == "secrets")
        assert mount["readOnly"] is True
        assert env["MERGEWAY_SECRETS_DIR"] == mount["mountPath"]
        # The URL holds no password; the process adds it from the MERGEWAY_REDIS_PASSWORD file.
        assert env["REDIS_URL"] == "redis://redis.mergeway.svc:6379/0"


def test_rbac_is_namespaced_unless_cluster_wide_is_opted_in():
    objs = _rendered()
    kinds = sorted(o["kind"] for o in objs)
    assert "ClusterRole" not in kinds and "ClusterRoleBinding" not in kinds
    role = next(o for o in objs if o["kind"] == "Role")
    assert role["metadata"]["namespace"] == "shop"
    resources = {r for rule in role["rules"] for r in rule["resources"]}
    assert "configmaps" in resources and "deployments" in resources
    assert not resources & {"secrets", "roles", "rolebindings", "clusterroles", "namespaces", "*"}

    wide = _rendered("rbac.clusterWide=true", "rbac.allowSecrets=true")
    assert "Role" not in {o["kind"] for o in wide}
    cluster_role = next(o for o in wide if o["kind"] == "ClusterRole")
    assert "secrets" in {r for rule in cluster_role["rules"] for r in rule["resources"]}


def test_network_policies_limit_both_components():
    objs = _rendered()
    policies = {o["metadata"]["name"]: o["spec"] for o in objs if o["kind"] == "NetworkPolicy"}
    assert set(policies) == {"mw-web", "mw-worker", "mw-beat"}
    web, worker = policies["mw-web"], policies["mw-worker"]
    assert web["policyTypes"] == ["Ingress", "Egress"] and worker["policyTypes"] == ["Ingress", "Egress"]
    assert [p["port"] for p in web["ingress"][0]["ports"]] == [8080]
    web_egress = {p["port"] for rule in web["egress"] for p in rule["ports"]}
    assert web_egress == {53, 6379}, "the web pod must reach only DNS and Redis"
    assert "ingress" not in worker, "nothing may connect to the worker"
    beat_egress = {p["port"] for rule in policies["mw-beat"]["egress"] for p in rule["ports"]}
    assert beat_egress == {53, 6379} and "ingress" not in policies["mw-beat"], "beat reaches only DNS and Redis"


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("redis.existingSecret=", "at '/redis': 'anyOf' failed"),
        ("redis.url=redis://user:pw@redis:6379/0", "at '/redis/url'"),
        ("worker.concurrency=four", "at '/worker/concurrency': got string, want integer"),
        ("forges={bitbucket}", "at '/forges/0': value must be one of 'github', 'gitlab'"),
        (
            "rbac.extraRules[0].apiGroups={},rbac.extraRules[0].resources={*},rbac.extraRules[0].verbs={get}",
            "at '/rbac/extraRules/0/resources/0': 'not' failed",
        ),
        ("webb.replicas=2", "additional properties 'webb' not allowed"),
        ("policy=null", "missing property 'policy'"),
        ("logLevel=LOUD", "at '/logLevel'"),
        ("web.page.access=yes", "at '/web/page/access'"),
    ],
)
def test_schema_refuses_wrong_values_naming_the_key(override, expected):
    result = template(override)
    assert result.returncode != 0
    assert expected in result.stderr, result.stderr
    assert "goroutine" not in result.stderr


def test_policy_without_rules_list_is_refused_clearly():
    result = template("policy.rules=allow-everything")
    assert result.returncode != 0
    assert "at '/policy/rules'" in result.stderr, result.stderr


def test_kubeconfig_secret_for_other_clusters_reaches_only_the_worker():
    objs = _rendered("secrets.kubeconfig=mergeway-clusters")
    worker, web = _pod(objs, "-worker"), _pod(objs, "-web")
    env = {e["name"]: e.get("value") for e in worker["containers"][0]["env"]}
    mount = next(m for m in worker["containers"][0]["volumeMounts"] if m["name"] == "clusters")
    assert env["KUBECONFIG"] == f"{mount['mountPath']}/kubeconfig"
    volume = next(v for v in worker["volumes"] if v["name"] == "clusters")
    assert volume["secret"]["secretName"] == "mergeway-clusters"
    assert "mergeway-clusters" not in str(web["volumes"]), "the web pod mounts no kubeconfig"


def test_pods_keep_the_image_entrypoint_and_run_the_packaged_commands():
    objs = _rendered()
    for component, program in (("-web", "mergeway-web"), ("-worker", "mergeway-worker"), ("-beat", "mergeway-beat")):
        container = _pod(objs, component)["containers"][0]
        # `command` would replace the image's ENTRYPOINT (tini as PID 1, which reaps renderer children).
        assert "command" not in container
        assert container["args"][0] == program


def test_the_worker_confines_its_renderers_by_default():
    objs = _rendered()
    worker = _pod(objs, "-worker")["containers"][0]
    env = {e["name"]: e.get("value") for e in worker["env"]}
    assert env["MERGEWAY_RENDER_ISOLATION"] == "landlock"
    memory, concurrency = int(env["MERGEWAY_RENDER_MEMORY_BYTES"]), int(worker["args"][2])
    limit = worker["resources"]["limits"]["memory"]
    assert limit.endswith("Mi")
    # Every job's renderer at its limit at once still leaves the worker room.
    assert concurrency * memory + 256 * 1024 * 1024 <= int(limit[:-2]) * 1024 * 1024


def test_the_scheduler_runs_with_no_credentials_but_redis_and_a_liveness_check():
    beat = _pod(_rendered(), "-beat")
    container = beat["containers"][0]
    assert beat["automountServiceAccountToken"] is False and "envFrom" not in container
    assert not [e for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})]
    # Only the Redis password, as a file: no forge token or webhook secret reaches the scheduler.
    (volume,) = [v for v in beat["volumes"] if v["name"] == "secrets"]
    assert [item["path"] for src in volume["projected"]["sources"] for item in src["secret"]["items"]] == [
        "MERGEWAY_REDIS_PASSWORD"
    ]
    assert container["livenessProbe"]["exec"]["command"] == ["mergeway-beat", "--check"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MERGEWAY_BEAT_LOCK_SECONDS"] == "30" and "REDIS_URL" in env
    assert env["MERGEWAY_DRIFT_INTERVAL_SECONDS"] == "600"


def test_the_environments_page_is_off_unless_chosen_and_reaches_only_the_web_pods():
    def page_env(objs: list[dict[str, Any]], component: str) -> dict[str, str]:
        env = _pod(objs, component)["containers"][0].get("env", [])
        return {e["name"]: e.get("value", "") for e in env if e["name"].startswith("MERGEWAY_PAGE")}

    assert page_env(_rendered(), "-web")["MERGEWAY_PAGE"] == ""
    objs = _rendered("web.page.access=proxy", "web.page.proxyFrom={10.0.0.0/8,192.168.1.5}")
    assert page_env(objs, "-web") == {
        "MERGEWAY_PAGE": "proxy",
        "MERGEWAY_PAGE_PROXY_HEADER": "X-Forwarded-User",
        "MERGEWAY_PAGE_PROXY_FROM": "10.0.0.0/8,192.168.1.5",
        "MERGEWAY_PAGE_REFRESH_SECONDS": "30",
    }
    assert page_env(objs, "-worker") == {}

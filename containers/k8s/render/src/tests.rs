use std::collections::BTreeMap;

use super::*;

fn source() -> String {
    std::fs::read_to_string(k8s_dir().join("source.yaml")).unwrap()
}

fn rendered(form: Form) -> Vec<Value> {
    parse_documents(&render(&source(), form).unwrap()).unwrap()
}

/// The containers of a pod spec under `key`, as mappings.
fn list(pod: &Mapping, key: &str) -> Vec<Mapping> {
    pod.get(key)
        .and_then(Value::as_sequence)
        .map(|items| {
            items
                .iter()
                .map(|c| c.as_mapping().expect("a container is a mapping").clone())
                .collect()
        })
        .unwrap_or_default()
}

fn name(container: &Mapping) -> &str {
    container["name"].as_str().unwrap()
}

/// Every pod spec of `docs`.
fn pods(docs: &mut [Value]) -> Vec<Mapping> {
    docs.iter_mut()
        .filter_map(|d| pod_spec_mut(d).cloned())
        .collect()
}

/// The container's `env` as name → value (or `valueFrom`, written out).
fn env(container: &Mapping) -> BTreeMap<String, String> {
    container
        .get("env")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .map(|e| {
            let value = match e.get("value") {
                Some(v) => v.as_str().unwrap().to_owned(),
                None => serde_yaml::to_string(&e["valueFrom"]).unwrap(),
            };
            (e["name"].as_str().unwrap().to_owned(), value)
        })
        .collect()
}

/// The port of a `HOST:PORT` or `SCHEME://HOST:PORT[/…]` address.
fn port_of(addr: &str) -> u64 {
    let rest = addr.rsplit_once("://").map_or(addr, |(_, r)| r);
    let rest = rest.split(['/', '?']).next().unwrap();
    rest.rsplit_once(':').unwrap().1.parse().unwrap()
}

#[test]
fn native_differs_from_classic_only_in_where_sidecars_sit() {
    let mut native = rendered(Form::Native);
    let classic = rendered(Form::Classic);
    let mut moved = 0;
    for doc in &mut native {
        let Some(pod) = pod_spec_mut(doc) else {
            continue;
        };
        let mut init = Vec::new();
        let mut sidecars = Vec::new();
        for mut c in list(pod, "initContainers") {
            match c.remove("restartPolicy") {
                Some(p) if p == "Always" => sidecars.push(Value::Mapping(c)),
                Some(p) => panic!("init container {} restarts {p:?}", name(&c)),
                None => init.push(Value::Mapping(c)),
            }
        }
        moved += sidecars.len();
        if init.is_empty() {
            pod.remove("initContainers");
        } else {
            pod.insert("initContainers".into(), Value::Sequence(init));
        }
        let Value::Sequence(containers) = &mut pod["containers"] else {
            panic!("containers is a list");
        };
        containers.extend(sidecars);
    }
    assert_eq!(moved, 3, "three extensions are native sidecars");
    assert_eq!(native, classic);
}

#[test]
fn the_classic_form_puts_the_host_first() {
    let mut classic = rendered(Form::Classic);
    let pods = pods(&mut classic);
    assert_eq!(pods.len(), 1);
    let names: Vec<String> = list(&pods[0], "containers")
        .iter()
        .map(|c| name(c).to_owned())
        .collect();
    assert_eq!(
        names,
        ["host", "keyvalue-redis", "blobstore-s3", "messaging-nats"]
    );
    assert!(!pods[0].contains_key("initContainers"));
}

/// Probes, resources and security of every container of `pod`.
fn assert_operable(pod: &Mapping, what: &str) {
    let containers: Vec<Mapping> = list(pod, "initContainers")
        .into_iter()
        .chain(list(pod, "containers"))
        .collect();
    assert!(!containers.is_empty(), "{what}: no containers");
    for c in &containers {
        let n = format!("{what}: container {}", name(c));
        let http = port_of(&env(c)["WRPC_HTTP_ADDR"]);
        for (probe, path) in [
            ("startupProbe", "/healthz"),
            ("readinessProbe", "/readyz"),
            ("livenessProbe", "/healthz"),
        ] {
            let get = &c.get(probe).unwrap_or_else(|| panic!("{n} has no {probe}"))["httpGet"];
            assert_eq!(get["path"], path, "{n}: {probe}");
            assert_eq!(
                get["port"].as_u64(),
                Some(http),
                "{n}: {probe} probes its own port"
            );
        }
        let resources = c
            .get("resources")
            .unwrap_or_else(|| panic!("{n}: no resources"));
        for side in ["requests", "limits"] {
            for res in ["cpu", "memory"] {
                assert!(resources[side].get(res).is_some(), "{n}: no {side}.{res}");
            }
        }
        let sc = &c["securityContext"];
        assert_eq!(sc["runAsNonRoot"], true, "{n}");
        assert_eq!(sc["runAsUser"].as_u64(), Some(65532), "{n}");
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{n}");
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{n}");
        assert_eq!(sc["capabilities"]["drop"][0], "ALL", "{n}");
        assert_eq!(env(c)["LOG_FORMAT"], "json", "{n}");
    }
    // The host drains first, then the (native sidecar) extensions at once.
    let grace = |c: &Mapping, var: &str| {
        env(c)
            .get(var)
            .map_or(0, |d| d.strip_suffix('s').unwrap().parse::<u64>().unwrap())
    };
    let host = containers
        .iter()
        .map(|c| grace(c, "HOST_SHUTDOWN_GRACE"))
        .max();
    let extensions = containers
        .iter()
        .map(|c| grace(c, "WRPC_SHUTDOWN_GRACE"))
        .max();
    let needed = host.unwrap_or(0) + extensions.unwrap_or(0) + 5;
    let granted = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(
        granted >= needed,
        "{what}: terminationGracePeriodSeconds {granted} < {needed}, the drains plus 5s"
    );
}

#[test]
fn every_container_has_probes_resources_and_security() {
    for form in Form::ALL {
        let mut docs = rendered(form);
        for pod in pods(&mut docs) {
            assert_operable(&pod, &format!("{form}"));
        }
    }
}

#[test]
fn ports_do_not_collide_within_the_pod() {
    let mut docs = rendered(Form::Classic);
    let pod = &pods(&mut docs)[0];
    let mut ports: BTreeMap<u64, String> = BTreeMap::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for c in list(pod, "containers") {
        let owner = name(&c).to_owned();
        let env = env(&c);
        let mut bound: Vec<u64> = vec![port_of(&env["WRPC_HTTP_ADDR"])];
        bound.extend(env.get("WRPC_LISTEN").map(|l| port_of(l)));
        let declared: Vec<u64> = c["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|p| {
                let port_name = p["name"].as_str().unwrap().to_owned();
                assert!(port_name.len() <= 15, "port name {port_name} too long");
                if let Some(other) = names.insert(port_name.clone(), owner.clone()) {
                    panic!("port name {port_name} of {owner} is also {other}'s");
                }
                p["containerPort"].as_u64().unwrap()
            })
            .collect();
        for port in &bound {
            assert!(
                declared.contains(port),
                "{owner} binds {port} but does not declare it"
            );
        }
        for port in declared {
            if let Some(other) = ports.insert(port, owner.clone()) {
                panic!("port {port} is both {other}'s and {owner}'s");
            }
        }
    }
    // The workload's targets reach the extensions' listeners.
    let workload = docs
        .iter()
        .find(|d| d["metadata"]["name"] == "wrpc-workload")
        .unwrap();
    let workload: Value =
        serde_yaml::from_str(workload["data"]["workload.yaml"].as_str().unwrap()).unwrap();
    for entry in workload["wrpc"].as_sequence().unwrap() {
        let port = port_of(entry["target"].as_str().unwrap());
        assert!(
            ports.get(&port).is_some_and(|owner| owner != "host"),
            "{entry:?} targets no extension"
        );
    }
    let handler = port_of(workload["exports"][0]["serve"].as_str().unwrap());
    assert_eq!(ports[&handler], "host");
}

#[test]
fn renders_on_disk_are_current() {
    let stale = sync(&k8s_dir(), false).unwrap();
    assert!(
        stale.is_empty(),
        "stale renders (run `cargo run -p k8s-render`): {stale:?}"
    );
    for form in Form::ALL {
        let text = std::fs::read_to_string(form.path(&k8s_dir())).unwrap();
        assert!(text.starts_with(HEADER));
        assert!(!text.contains(SIDECARS_KEY));
    }
}

#[test]
fn sidecars_follow_existing_init_containers() {
    let source = "\
kind: Pod
spec:
  initContainers: [{name: migrate, image: m}]
  containers: [{name: app, image: a}]
  x-sidecars: [{name: proxy, image: p}]
";
    let native = render(source, Form::Native).unwrap();
    let mut docs = parse_documents(&native).unwrap();
    let pod = pod_spec_mut(&mut docs[0]).unwrap();
    let init = list(pod, "initContainers");
    assert_eq!(
        init.iter().map(name).collect::<Vec<_>>(),
        ["migrate", "proxy"]
    );
    assert!(!init[0].contains_key("restartPolicy"));
    assert_eq!(init[1]["restartPolicy"], "Always");
    assert_eq!(list(pod, "containers").len(), 1);

    let classic = render(source, Form::Classic).unwrap();
    let mut docs = parse_documents(&classic).unwrap();
    let pod = pod_spec_mut(&mut docs[0]).unwrap();
    let names: Vec<String> = list(pod, "containers")
        .iter()
        .map(|c| name(c).to_owned())
        .collect();
    assert_eq!(names, ["app", "proxy"]);
    assert_eq!(list(pod, "initContainers").len(), 1);
}

#[test]
fn bad_sources_are_named() {
    let err = |source: &str| format!("{:#}", render(source, Form::Native).unwrap_err());
    assert!(err("kind: Pod\nspec:\n  x-sidecars: {a: 1}\n").contains("must be a list"));
    assert!(err("kind: Pod\nspec:\n  x-sidecars: [{image: x}]\n").contains("has no `name`"));
    assert!(
        err("kind: Pod\nspec:\n  x-sidecars: [{name: s, restartPolicy: Never}]\n")
            .contains("sidecar `s` sets restartPolicy")
    );
    assert!(err("kind: ConfigMap\ndata:\n  x-sidecars: []\n").contains("at `data.x-sidecars`"));
    assert!(err("kind: Pod\nspec: [\n").contains("document 1"));
    let classic = render(
        "kind: Pod\nspec:\n  containers: {}\n  x-sidecars: []\n",
        Form::Classic,
    );
    assert!(format!("{:#}", classic.unwrap_err()).contains("`containers` must be a list"));
}

#[test]
fn shared_nats_matches_the_source_containers() {
    let mut source_docs = parse_documents(&source()).unwrap();
    let source_pod = pods(&mut source_docs).remove(0);
    let mut reference: BTreeMap<String, Mapping> = list(&source_pod, SIDECARS_KEY)
        .into_iter()
        .chain(list(&source_pod, "containers"))
        .map(|c| (name(&c).to_owned(), c))
        .collect();

    let path = k8s_dir().join("shared-nats/workload.yaml");
    let mut docs = parse_documents(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut seen = Vec::new();
    for doc in &mut docs {
        let kind = doc["kind"].as_str().unwrap().to_owned();
        let replicas = doc["spec"]["replicas"].as_u64();
        let Some(pod) = pod_spec_mut(doc) else {
            continue;
        };
        assert_eq!(kind, "Deployment");
        assert_operable(pod, "shared-nats");
        for c in list(pod, "containers") {
            let n = name(&c).to_owned();
            let original = reference
                .remove(&n)
                .unwrap_or_else(|| panic!("shared-nats container {n} is not in source.yaml"));
            for key in [
                "image",
                "imagePullPolicy",
                "startupProbe",
                "readinessProbe",
                "livenessProbe",
                "resources",
                "securityContext",
            ] {
                assert_eq!(c.get(key), original.get(key), "{n}: {key}");
            }
            let env = env(&c);
            assert!(
                !env.contains_key("WRPC_LISTEN"),
                "{n} serves over NATS only"
            );
            if n != "host" {
                assert!(env.contains_key("WRPC_NATS_URL"), "{n} serves over NATS");
                assert!(replicas.unwrap() >= 2, "{n} runs several replicas");
            }
            seen.push(n);
        }
    }
    assert!(
        reference.is_empty(),
        "missing from shared-nats: {reference:?}"
    );
    assert_eq!(seen.len(), 4);
}

#[test]
fn compose_is_consistent() {
    let path = k8s_dir().parent().unwrap().join("compose.yaml");
    let mut compose: Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    compose.apply_merge().unwrap();
    let services = compose["services"].as_mapping().unwrap();
    let service = |n: &str| services.get(n).unwrap_or_else(|| panic!("no service {n}"));
    let env_of = |n: &str, var: &str| service(n)["environment"][var].as_str().map(str::to_owned);
    for (n, s) in services {
        let n = n.as_str().unwrap();
        for (dep, how) in s
            .get("depends_on")
            .and_then(Value::as_mapping)
            .into_iter()
            .flatten()
        {
            assert_eq!(how["condition"], "service_healthy", "{n} → {dep:?}");
            assert!(
                service(dep.as_str().unwrap()).get("healthcheck").is_some(),
                "{n} waits for {dep:?}, which has no healthcheck"
            );
        }
        if !s["image"].as_str().unwrap().starts_with("wrpc-ext/") {
            continue;
        }
        assert_eq!(s["pull_policy"], "never", "{n}");
        assert_eq!(s["user"], "65532:65532", "{n}");
        assert_eq!(s["read_only"], true, "{n}");
        assert_eq!(s["cap_drop"][0], "ALL", "{n}");
        let probe: Vec<&str> = s["healthcheck"]["test"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(probe[..3], ["CMD", "/app", "healthcheck"], "{n}");
        for side in ["reservations", "limits"] {
            assert!(s["deploy"]["resources"][side]["memory"].is_string(), "{n}");
        }
        assert_eq!(env_of(n, "LOG_FORMAT").as_deref(), Some("json"), "{n}");
    }
    let workload: Value =
        serde_yaml::from_str(compose["configs"]["workload"]["content"].as_str().unwrap()).unwrap();
    for entry in workload["wrpc"].as_sequence().unwrap() {
        let target = entry["target"].as_str().unwrap();
        let host = target
            .trim_start_matches("tcp://")
            .split(':')
            .next()
            .unwrap();
        let listen = env_of(host, "WRPC_LISTEN").unwrap();
        assert_eq!(port_of(&listen), port_of(target), "{target}");
    }
    let handler = env_of("messaging-nats", "MESSAGING_SUBSCRIBE").unwrap();
    let handler = handler.split("handler=").nth(1).unwrap();
    assert_eq!(handler, "tcp://host:7700");
    assert_eq!(
        port_of(workload["exports"][0]["serve"].as_str().unwrap()),
        7700
    );
}

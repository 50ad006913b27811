//! The requests the Deis v1.13 client makes for each command (§18.3), in its order and with its
//! exact paths (trailing slashes, `?page_size=`), and what it reads from the answers.

use serde_json::json;

use crate::support::Controller;

on_both_databases!(a_developers_day_as_the_client_sends_it);

async fn a_developers_day_as_the_client_sends_it(c: Controller) {
    // deis register http://deis.example.com: probe, register, login.
    c.req("GET", "/v1/", None, None)
        .await
        .expect(401, "UNAUTHORIZED");
    let user = json!({"username": "dev", "password": "pw", "email": "dev@example.com"});
    c.req("POST", "/v1/auth/register/", None, Some(user))
        .await
        .expect(201, "CREATED");
    let login = c
        .req(
            "POST",
            "/v1/auth/login/",
            None,
            Some(json!({"username": "dev", "password": "pw"})),
        )
        .await;
    login.expect(200, "OK");
    let t = login.json()["token"].as_str().expect("token").to_owned();
    let t = Some(t.as_str());

    // deis keys:add ~/.ssh/id_rsa.pub; keys:list; keys:remove.
    let public = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDf dev@laptop";
    c.req(
        "POST",
        "/v1/keys/",
        t,
        Some(json!({"id": "dev@laptop", "public": public})),
    )
    .await
    .expect(201, "CREATED");
    let keys = c
        .req("GET", "/v1/keys/?page_size=100", t, None)
        .await
        .json();
    assert_eq!(keys["results"][0]["id"], "dev@laptop");

    // deis create myapp -b <buildpack>: the app, then its BUILDPACK_URL.
    c.req("POST", "/v1/apps/", t, Some(json!({"id": "myapp"})))
        .await
        .expect(201, "CREATED");
    let bp = c
        .req(
            "POST",
            "/v1/apps/myapp/config/",
            t,
            Some(json!({"values": {"BUILDPACK_URL": "https://example.com/bp.git"}})),
        )
        .await;
    bp.expect(201, "CREATED");
    // deis apps:list; apps:info (app, processes, domains).
    let apps = c
        .req("GET", "/v1/apps/?page_size=100", t, None)
        .await
        .json();
    assert_eq!(apps["results"][0]["id"], "myapp");
    c.req("GET", "/v1/apps/myapp/", t, None)
        .await
        .expect(200, "OK");
    c.req("GET", "/v1/apps/myapp/containers/?page_size=100", t, None)
        .await
        .expect(200, "OK");
    c.req("GET", "/v1/apps/myapp/domains/?page_size=100", t, None)
        .await
        .expect(200, "OK");

    // deis pull example/image -p "web: ./run": a build; the client prints "done" on 201.
    let pulled = c
        .req(
            "POST",
            "/v1/apps/myapp/builds/",
            t,
            Some(json!({"image": "example/image", "procfile": {"web": "./run"}})),
        )
        .await;
    pulled.expect(201, "CREATED");
    // deis config:set FOO=bar: the client prints "done, <values.DEIS_RELEASE>".
    let set = c
        .req(
            "POST",
            "/v1/apps/myapp/config/",
            t,
            Some(json!({"values": {"FOO": "bar"}})),
        )
        .await;
    set.expect(201, "CREATED");
    assert_eq!(set.json()["values"]["DEIS_RELEASE"], "v4");
    // deis config:unset FOO; config:list.
    c.req(
        "POST",
        "/v1/apps/myapp/config/",
        t,
        Some(json!({"values": {"FOO": null}})),
    )
    .await
    .expect(201, "CREATED");
    let config = c.req("GET", "/v1/apps/myapp/config/", t, None).await.json();
    assert!(config["values"].get("FOO").is_none());
    // deis limits:set web=512M; limits:unset web; tags:set environ=prod.
    c.req(
        "POST",
        "/v1/apps/myapp/config/",
        t,
        Some(json!({"memory": {"web": "512M"}})),
    )
    .await
    .expect(201, "CREATED");
    c.req(
        "POST",
        "/v1/apps/myapp/config/",
        t,
        Some(json!({"memory": {"web": null}})),
    )
    .await
    .expect(201, "CREATED");
    c.req(
        "POST",
        "/v1/apps/myapp/config/",
        t,
        Some(json!({"tags": {"environ": "prod"}})),
    )
    .await
    .expect(201, "CREATED");

    // deis scale web=2; ps:list; ps:restart web.
    c.req(
        "POST",
        "/v1/apps/myapp/scale/",
        t,
        Some(json!({"web": "2"})),
    )
    .await
    .expect(204, "NO CONTENT");
    let ps = c
        .req("GET", "/v1/apps/myapp/containers/?page_size=100", t, None)
        .await
        .json();
    assert_eq!(
        ps["count"], 3,
        "cmd.1 from the first (pulled) build, and web.1, web.2"
    );
    let webs = c
        .req(
            "GET",
            "/v1/apps/myapp/containers/web/?page_size=100",
            t,
            None,
        )
        .await
        .json();
    assert_eq!(webs["count"], 2);
    c.req("POST", "/v1/apps/myapp/containers/web/restart/", t, None)
        .await
        .expect(200, "OK");

    // deis releases; releases:info v2; rollback; rollback v2.
    let releases = c
        .req("GET", "/v1/apps/myapp/releases/?page_size=100", t, None)
        .await
        .json();
    assert_eq!(releases["count"], 8);
    assert_eq!(releases["results"][0]["summary"], "dev added tag environ");
    let v2 = c
        .req("GET", "/v1/apps/myapp/releases/v2/", t, None)
        .await
        .json();
    assert_eq!(v2["summary"], "dev added BUILDPACK_URL");
    let back = c
        .req(
            "POST",
            "/v1/apps/myapp/releases/rollback/",
            t,
            Some(json!({})),
        )
        .await;
    back.expect(201, "CREATED");
    assert_eq!(back.json()["version"], 9);
    let to_v3 = c
        .req(
            "POST",
            "/v1/apps/myapp/releases/rollback/",
            t,
            Some(json!({"version": 3})),
        )
        .await;
    assert_eq!(to_v3.json()["version"], 10);

    // deis domains:add / remove; sharing; transfer; users; regenerate; passwd.
    c.req(
        "POST",
        "/v1/apps/myapp/domains/",
        t,
        Some(json!({"domain": "www.myapp.example"})),
    )
    .await
    .expect(201, "CREATED");
    c.req(
        "DELETE",
        "/v1/apps/myapp/domains/www.myapp.example",
        t,
        None,
    )
    .await
    .expect(204, "NO CONTENT");
    c.req(
        "POST",
        "/v1/auth/register/",
        t,
        Some(json!({"username": "friend", "password": "pw"})),
    )
    .await
    .expect(201, "CREATED");
    c.req(
        "POST",
        "/v1/apps/myapp/perms/",
        t,
        Some(json!({"username": "friend"})),
    )
    .await
    .expect(201, "CREATED");
    assert_eq!(
        c.req("GET", "/v1/apps/myapp/perms/", t, None).await.json(),
        json!({"users": ["friend"]})
    );
    c.req("DELETE", "/v1/apps/myapp/perms/friend", t, None)
        .await
        .expect(204, "NO CONTENT");
    assert_eq!(
        c.req("GET", "/v1/users/?page_size=100", t, None)
            .await
            .json()["count"],
        2
    );
    c.req("GET", "/v1/admin/perms/?page_size=100", t, None)
        .await
        .expect(200, "OK");
    c.req(
        "POST",
        "/v1/auth/passwd/",
        t,
        Some(json!({"password": "pw", "new_password": "pw2"})),
    )
    .await
    .expect(200, "OK");
    c.req("DELETE", "/v1/keys/dev@laptop", t, None)
        .await
        .expect(204, "NO CONTENT");
    c.req(
        "POST",
        "/v1/apps/myapp/",
        t,
        Some(json!({"owner": "friend"})),
    )
    .await
    .expect(200, "OK");
    let regenerated = c.req("POST", "/v1/auth/tokens/", t, Some(json!({}))).await;
    regenerated.expect(200, "OK");
    let t2 = regenerated.json()["token"]
        .as_str()
        .expect("token")
        .to_owned();

    // deis destroy --confirm=myapp (dev is admin, so may destroy friend's app); auth:cancel.
    c.req("DELETE", "/v1/apps/myapp/", Some(&t2), None)
        .await
        .expect(204, "NO CONTENT");
    // The last administrator may not leave; with friend made one (deis perms:create friend
    // --admin), dev may.
    c.req("DELETE", "/v1/auth/cancel/", Some(&t2), None)
        .await
        .expect(409, "CONFLICT");
    c.req(
        "POST",
        "/v1/admin/perms/",
        Some(&t2),
        Some(json!({"username": "friend"})),
    )
    .await
    .expect(201, "CREATED");
    c.req("DELETE", "/v1/auth/cancel/", Some(&t2), None)
        .await
        .expect(204, "NO CONTENT");
    c.req("GET", "/v1/apps/?page_size=100", Some(&t2), None)
        .await
        .expect(401, "UNAUTHORIZED");
}

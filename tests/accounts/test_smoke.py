def test_home_renders_for_anonymous(client, db):
    assert client.get("/").status_code == 200

"""An untrusted pull request, commenter or webhook sender, tried as an attacker would.

Each module reproduces findings of the security review (the threat model in the README's "Security
model") through the real components, and shows them refused:

====  ================================================  ==========================================
 #    finding                                            tests
====  ================================================  ==========================================
 1    kustomize runs commands (remote bases, gitconfig)  test_render_hostile, test_render_hostile_e2e
 2    kustomize/Helm fetch URLs                          test_render_hostile
 3    deleted forks; ``/preview`` without permission     test_identity_forks, test_identity_commands
 4    objects outside the policy; Secret oracle          test_policy_objects, test_policy_rules, test_policy_cli
 5    clone URL and identity from the payload            test_identity_clone_url, test_identity_repository,
                                                         test_identity_github_app, test_identity_remote,
                                                         test_identity_gitlab_secrets
 6    alias bombs, unbounded input, poison messages      test_render_hostile (bounds), test_poison
 7    replayed bodies with new delivery ids              test_identity_replay
 8    ``branch:`` pointing at an unpinned branch         test_policy_branch
 9    foreign comments carrying the sticky marker        test_identity_sticky
 10   colliding ApplySet names                           test_policy_applyset
 11   chart defaults; no policy, no service              test_policy_startup; the chart's hardening is
                                                         rendered and installed for real in tests/ship
                                                         (test_chart_render, test_chart_install,
                                                         test_worker_identity)
 12   object names that reshape API requests (CR/LF      test_hostile_names; tests/unit/test_transport
      request smuggling, ``/``, ``..``, ``?``)
 24.1 a chart reads worker files through a symlinked    test_render_files, test_render_hostile_e2e
      directory; 24.7 a kustomization symlinked out;
      24.9 a chart directory named like a flag
 24.2 the YAML budget per file, not per render          test_render_budget
====  ================================================  ==========================================

Second round (issue 24), by that issue's numbers:

====  ================================================  ==========================================
 #    finding                                            tests
====  ================================================  ==========================================
 5    the destructive guard released too much, missed    test_guard_allowance; the user-visible
      ownerReference/finalizer/retention deletions       paths in tests/e2e/test_destructive_guard
 6    ``/rollback`` vouched for a planted revert branch  test_identity_revert_branch
 8    command authors taken from the payload             test_identity_command_author
====  ================================================  ==========================================
"""

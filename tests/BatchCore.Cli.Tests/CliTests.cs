using System.Text.Json;

namespace BatchCore.Cli.Tests;

public sealed class HelpTests
{
    /// <summary>Help names the command users type, not the assembly (it read `BatchCore.Cli validate <spec>`).</summary>
    [Fact]
    public async Task Help_UsageLines_NameTheBatchcoreCommand()
    {
        var root = await Cli.RunAsync("--help");
        var validate = await Cli.RunAsync("validate", "--help");

        Assert.Equal(0, root.ExitCode);
        Assert.Contains("batchcore [command] [options]", root.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("batchcore validate <spec> [options]", validate.StandardOutput, StringComparison.Ordinal);
        Assert.DoesNotContain("BatchCore.Cli", root.StandardOutput + validate.StandardOutput, StringComparison.Ordinal);
        Assert.Equal(0, (await Cli.RunAsync("--version")).ExitCode);
    }
}

public sealed class ValidateTests
{
    [Fact]
    public async Task Validate_ValidSpec_ExitsZero()
    {
        var r = await Cli.RunAsync("validate", Cli.Spec("valid.yaml"));

        Assert.Equal(0, r.ExitCode);
        Assert.Contains("valid", r.StandardOutput);
    }

    /// <summary>A definition as AWS returns it (volumes, mount points, ulimits, secrets, log configuration…) is valid as is.</summary>
    [Fact]
    public async Task Validate_ADefinitionWrittenForAws_ExitsZero()
    {
        var r = await Cli.RunAsync("validate", Cli.Spec("aws-definition.json"));

        Assert.True(r.ExitCode == 0, r.StandardOutput + r.StandardError);
        Assert.DoesNotContain("unknown field", r.StandardOutput + r.StandardError, StringComparison.Ordinal);
    }

    /// <summary>AWS fields BatchCore has no counterpart for (EKS, multi-node) are known fields refused with the reason, not typos.</summary>
    [Fact]
    public async Task Validate_AwsFieldsBatchCoreDoesNotRun_AreRefusedWithTheReason()
    {
        var r = await Cli.RunAsync("validate", Cli.Spec("aws-unsupported.json"));
        var output = r.StandardOutput + r.StandardError;

        Assert.Equal(2, r.ExitCode);
        Assert.DoesNotContain("unknown field", output, StringComparison.Ordinal);
        Assert.Equal(
            [
                "jobDefinitions[1].eksProperties: is not supported by BatchCore (it runs no Kubernetes pods): use containerProperties",
                "jobs[0].nodeOverrides: applies only to multi-node parallel jobs (job definition type multinode), which BatchCore does not support",
            ],
            Cli.Lines(r.StandardOutput));
    }

    [Fact]
    public async Task Validate_InvalidSpec_ExitsTwo_WithEveryProblemAndItsPath()
    {
        var r = await Cli.RunAsync("validate", Cli.Spec("invalid.json"));

        Assert.Equal(2, r.ExitCode);
        Assert.Equal(
            [
                "jobs[3].jobQeue: unknown field of SubmitJobRequest",
                "jobz: unknown top-level key (known: computeEnvironments, schedulingPolicies, consumableResources, jobQueues, jobDefinitions, jobs)",
                "jobQueues[0].priority: is required",
                "jobDefinitions[1].containerProperties.resourceRequirements: must give MEMORY (the memory hard limit in MiB is required)",
                "jobs[1].arrayProperties.size: must be between 2 and 10000, was 10001",
                "jobs[2].dependsOn[0].jobName: job too-big was not submitted: jobs[1] is invalid",
            ],
            Cli.Lines(r.StandardOutput));
    }

    /// <summary>A value of the wrong kind says what the field takes and what it got (it named .NET types: "could not be converted to System.Nullable`1[System.Int32]").</summary>
    [Fact]
    public async Task Validate_ValuesOfTheWrongKind_SayWhatTheFieldTakes()
    {
        using var file = Cli.TempSpec("""
            computeEnvironments:
              - computeEnvironmentName: local
                type: UNMANAGED
                hosts: [{ hostName: h0, driver: process, vcpus: two, memoryMiB: 1024 }]
            jobQueues:
              - { jobQueueName: q, priority: high, computeEnvironmentOrder: [{ order: 1, computeEnvironment: local }] }
              - { jobQueueName: r, priority: 1, computeEnvironmentOrder: { order: 1, computeEnvironment: local } }
              - { jobQueueName: s, priority: 99999999999, computeEnvironmentOrder: [{ order: 1, computeEnvironment: local }] }
            jobs:
              - { jobName: a, jobQueue: q, jobDefinition: d, arrayProperties: { size: abc } }
              - { jobName: b, jobQueue: q, jobDefinition: d, timeout: { attemptDurationSeconds: 1.5 } }
              - { jobName: c, jobQueue: q, jobDefinition: d, propagateTags: maybe }
              - { jobName: [d], jobQueue: q, jobDefinition: d }
              - { jobName: e, jobQueue: q, jobDefinition: d, arrayProperties: 3 }
              - { jobName: f, jobQueue: q, jobDefinition: d, parameters: { input: [a, b] } }
              - { jobName: g, jobQueue: q, jobDefinition: d, containerOverrides: { command: [echo], environment: [name] } }
            """);

        var r = await Cli.RunAsync("validate", file.Path);

        Assert.Equal(2, r.ExitCode);
        Assert.Equal(
            [
                "computeEnvironments[0].hosts[0].vcpus: must be a number, was \"two\"",
                "jobQueues[0].priority: must be a number, was \"high\"",
                "jobQueues[1].computeEnvironmentOrder: must be a list, was an object",
                "jobQueues[2].priority: must be a whole number from -2147483648 to 2147483647, was 99999999999",
                "jobs[0].arrayProperties.size: must be a number, was \"abc\"",
                "jobs[1].timeout.attemptDurationSeconds: must be a whole number, was 1.5",
                "jobs[2].propagateTags: must be true or false, was \"maybe\"",
                "jobs[3].jobName: must be a string, was a list",
                "jobs[4].arrayProperties: must be an object, was 3",
                "jobs[5].parameters.input: must be a string, was a list",
                "jobs[6].containerOverrides.environment[0]: must be an object, was \"name\"",
            ],
            Cli.Lines(r.StandardOutput));
    }

    [Fact]
    public async Task Validate_YamlSyntaxError_NamesTheLine()
    {
        var file = Path.Combine(Path.GetTempPath(), $"batchcore-bad-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(file, "jobs:\n  - jobName: a\n    jobQueue: [unclosed\n", TestContext.Current.CancellationToken);
        try
        {
            var r = await Cli.RunAsync("validate", file);

            Assert.Equal(2, r.ExitCode);
            Assert.StartsWith("line ", Cli.Lines(r.StandardOutput).Single());
            Assert.Contains("YAML syntax error", r.StandardOutput);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Run_InvalidSpec_ExitsTwo_RunsNothing()
    {
        var r = await Cli.RunAsync("run", Cli.Spec("invalid.json"), "--output", "json");

        Assert.Equal(2, r.ExitCode);
        Assert.Equal("", r.StandardOutput.Trim());
        Assert.Contains("jobs[1].arrayProperties.size: must be between 2 and 10000, was 10001", r.StandardError);
    }
}

public sealed class RunTests
{
    [Fact]
    public async Task Run_ValidSpec_Json_EveryJobSucceeded_WithAttemptsLogsAndArraySummary()
    {
        var r = await Cli.RunAsync("run", Cli.Spec("valid.yaml"), "--output", "json");

        Assert.True(r.ExitCode == 0, r.StandardError + r.StandardOutput);
        using var doc = JsonDocument.Parse(r.StandardOutput);
        var jobs = doc.RootElement.GetProperty("jobs").EnumerateArray().ToList();
        Assert.Equal(6, jobs.Count); // fan-out + 3 children, reduce, retry-once
        Assert.All(jobs, j => Assert.Equal("SUCCEEDED", j.GetProperty("status").GetString()));

        var parent = jobs.Single(j => j.GetProperty("jobName").GetString() == "fan-out" && !j.GetProperty("arrayProperties").TryGetProperty("index", out _));
        var array = parent.GetProperty("arrayProperties");
        Assert.Equal(3, array.GetProperty("size").GetInt32());
        Assert.Equal(3, array.GetProperty("statusSummary").GetProperty("SUCCEEDED").GetInt32());
        var parentId = parent.GetProperty("jobId").GetString();
        var children = jobs.Where(j => j.GetProperty("jobId").GetString()!.StartsWith(parentId + ":", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, children.Count);

        var retried = jobs.Single(j => j.GetProperty("jobName").GetString() == "retry-once");
        var attempts = retried.GetProperty("attempts").EnumerateArray().ToList();
        Assert.Equal(2, attempts.Count);
        Assert.Equal(1, attempts[0].GetProperty("container").GetProperty("exitCode").GetInt32());
        Assert.Equal(0, attempts[1].GetProperty("container").GetProperty("exitCode").GetInt32());
        Assert.All(attempts, a => Assert.StartsWith("flaky/default/", a.GetProperty("container").GetProperty("logStreamName").GetString()));

        var reduce = jobs.Single(j => j.GetProperty("jobName").GetString() == "reduce");
        Assert.Equal(parentId, reduce.GetProperty("dependsOn")[0].GetProperty("jobId").GetString());
        Assert.True(reduce.GetProperty("startedAt").GetInt64() >= children.Max(c => c.GetProperty("stoppedAt").GetInt64()));
        Assert.True(reduce.GetProperty("createdAt").GetInt64() > 0);
    }

    [Fact]
    public async Task Run_FailingJob_ExitsOne_DependentFails()
    {
        var r = await Cli.RunAsync("run", Cli.Spec("failing.json"), "--output", "json");

        Assert.Equal(1, r.ExitCode);
        using var doc = JsonDocument.Parse(r.StandardOutput);
        var jobs = doc.RootElement.GetProperty("jobs").EnumerateArray().ToList();
        Assert.All(jobs, j => Assert.Equal("FAILED", j.GetProperty("status").GetString()));
        Assert.Equal(3, jobs[0].GetProperty("attempts")[0].GetProperty("container").GetProperty("exitCode").GetInt32());
        Assert.Equal("Dependent Job failed", jobs[1].GetProperty("statusReason").GetString());
    }

    [Fact]
    public async Task Run_Table_ListsJobs()
    {
        var r = await Cli.RunAsync("run", Cli.Spec("failing.json"));

        Assert.Equal(1, r.ExitCode);
        Assert.Contains("after-failure", r.StandardOutput);
        Assert.Contains("Dependent Job failed", r.StandardOutput);
    }

    [Fact]
    public async Task Logs_AfterRunWithState_PrintsEveryAttempt()
    {
        var state = Path.Combine(Path.GetTempPath(), "batchcore-state-" + Guid.NewGuid().ToString("N"));
        try
        {
            var run = await Cli.RunAsync("run", Cli.Spec("valid.yaml"), "--output", "json", "--state", state);
            Assert.True(run.ExitCode == 0, run.StandardError);
            Assert.True(File.Exists(Path.Combine(state, "jobs.json")));

            var retried = await Cli.RunAsync("logs", "retry-once", "--state", state);
            Assert.Equal(0, retried.ExitCode);
            var lines = Cli.Lines(retried.StandardOutput);
            Assert.Contains("attempt 1", lines);
            Assert.Contains("attempt 2", lines);

            using var doc = JsonDocument.Parse(run.StandardOutput);
            var reduceId = doc.RootElement.GetProperty("jobs").EnumerateArray()
                .Single(j => j.GetProperty("jobName").GetString() == "reduce").GetProperty("jobId").GetString()!;
            var reduce = await Cli.RunAsync("logs", reduceId, "--state", state);
            Assert.Equal(["reduced"], Cli.Lines(reduce.StandardOutput));

            var array = await Cli.RunAsync("logs", "fan-out", "--state", state);
            Assert.Contains("index=0", array.StandardOutput);
            Assert.Contains("index=2", array.StandardOutput);

            var unknown = await Cli.RunAsync("logs", "no-such-job", "--state", state);
            Assert.Equal(2, unknown.ExitCode);
            Assert.Contains("no-such-job is not in", unknown.StandardError);
        }
        finally
        {
            if (Directory.Exists(state))
            {
                Directory.Delete(state, recursive: true);
            }
        }
    }

    /// <summary>A job whose command cannot start shows why in the run's table (the generic reason hid it in jobs.json).</summary>
    [Fact]
    public async Task Run_ACommandThatCannotStart_ShowsWhy()
    {
        using var file = Cli.TempSpec("""
            computeEnvironments:
              - computeEnvironmentName: local
                type: UNMANAGED
                hosts: [{ hostName: h0, driver: process, vcpus: 1, memoryMiB: 1024 }]
            jobQueues:
              - { jobQueueName: q, priority: 1, computeEnvironmentOrder: [{ order: 1, computeEnvironment: local }] }
            jobDefinitions:
              - jobDefinitionName: missing
                type: container
                containerProperties:
                  command: [no-such-binary-xyz]
                  resourceRequirements: [{ type: VCPU, value: 1 }, { type: MEMORY, value: 128 }]
            jobs:
              - { jobName: m, jobQueue: q, jobDefinition: missing }
            """);
        var spec = file.Path;
        var run = await Cli.RunAsync("run", spec, "--output", "table");
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("CannotStartContainerError", run.StandardOutput.Replace("\n", "", StringComparison.Ordinal).Replace("│", "", StringComparison.Ordinal).Replace(" ", "", StringComparison.Ordinal), StringComparison.Ordinal);
    }

    /// <summary>Unquoted YAML numbers in string fields keep the text they were written with (a command argument `1.10` ran as `1.1`).</summary>
    [Fact]
    public async Task Run_YamlNumbersInCommandArguments_KeepTheirText()
    {
        using var file = Cli.TempSpec("""
            computeEnvironments:
              - computeEnvironmentName: local
                type: UNMANAGED
                hosts: [{ hostName: h0, driver: process, vcpus: 1, memoryMiB: 1024 }]
            jobQueues:
              - { jobQueueName: q, priority: 1, computeEnvironmentOrder: [{ order: 1, computeEnvironment: local }] }
            jobDefinitions:
              - jobDefinitionName: echo
                type: container
                containerProperties:
                  command: [echo, 1.10, 1e3, 007, 12345678901234567890, -0.50]
                  resourceRequirements: [{ type: VCPU, value: 1 }, { type: MEMORY, value: 128 }]
            jobs:
              - { jobName: numbers, jobQueue: q, jobDefinition: echo }
            """);
        using var state = Cli.TempState();
        var run = await Cli.RunAsync("run", file.Path, "--state", state.Path);
        Assert.True(run.ExitCode == 0, run.StandardError);
        var logs = await Cli.RunAsync("logs", "numbers", "--state", state.Path);
        Assert.Contains("1.10 1e3 007 12345678901234567890 -0.50", logs.StandardOutput, StringComparison.Ordinal);
    }

    /// <summary>simulate --spec reports what is wrong with the spec (as validate does), and an unwritable --charts path is an error, not a stack trace.</summary>
    [Fact]
    public async Task Simulate_NamesSpecProblems_AndAnUnwritableChartsPath()
    {
        using var file = Cli.TempSpec("""
            computeEnvironments:
              - computeEnvironmentName: m
                type: MANAGED
                computeResources: { type: EC2, maxvCpu: 16, instanceTypes: [c6i.large], subnets: [s], securityGroupIds: [g], instanceRole: r }
            """);
        var spec = file.Path;
        var typo = await Cli.RunAsync("simulate", "--workload", Cli.Spec("small.jsonl"), "--spec", spec);
        Assert.Equal(2, typo.ExitCode);
        Assert.Contains("maxvCpu", typo.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("has no MANAGED compute environment", typo.StandardError, StringComparison.Ordinal);

        var missing = await Cli.RunAsync("simulate", "--workload", Cli.Spec("small.jsonl"), "--spec", spec + ".nope");
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("cannot be read", missing.StandardError, StringComparison.Ordinal);

        var charts = await Cli.RunAsync("simulate", "--workload", Cli.Spec("small.jsonl"), "--profile", "ec2", "--charts", spec);
        Assert.Equal(2, charts.ExitCode);
        Assert.Contains("the charts cannot be written there", charts.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", charts.StandardError, StringComparison.Ordinal);
    }

    /// <summary>A job no host can ever hold (and no time-limit action to cancel it) ends the run with its reason instead of waiting forever.</summary>
    [Fact]
    public async Task Run_WithAJobNoHostCanHold_StopsWithTheReason()
    {
        using var file = Cli.TempSpec("""
            computeEnvironments:
              - computeEnvironmentName: local
                type: UNMANAGED
                hosts: [{ hostName: h0, driver: process, vcpus: 2, memoryMiB: 2048 }]
            jobQueues:
              - { jobQueueName: q, priority: 1, computeEnvironmentOrder: [{ order: 1, computeEnvironment: local }] }
            jobDefinitions:
              - jobDefinitionName: big
                type: container
                containerProperties:
                  command: [sh, -c, 'true']
                  resourceRequirements: [{ type: VCPU, value: "64" }, { type: MEMORY, value: "256" }]
            jobs:
              - { jobName: too-big, jobQueue: q, jobDefinition: big }
            """);
        var spec = file.Path;
        var run = await Cli.RunAsync("run", spec);
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("job too-big can never start: MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT", run.StandardError, StringComparison.Ordinal);
    }

    /// <summary>A state directory resumes only the spec it was made for: another spec is refused, not replaced by the old run's results.</summary>
    [Fact]
    public async Task Run_WithTheStateOfAnotherSpec_IsRefused()
    {
        using var state = Cli.TempState();
        var first = await Cli.RunAsync("run", Cli.Spec("valid.yaml"), "--state", state.Path);
        Assert.True(first.ExitCode == 0, first.StandardError);
        using var other = Cli.TempSpec(File.ReadAllText(Cli.Spec("valid.yaml")) + "\n# changed\n");
        var second = await Cli.RunAsync("run", other.Path, "--state", state.Path);
        Assert.Equal(2, second.ExitCode);
        Assert.Contains("holds a run of another spec", second.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("Resuming", second.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_WithState_Again_ResumesWithoutRunningDoneJobsAgain()
    {
        var state = Path.Combine(Path.GetTempPath(), "batchcore-state-" + Guid.NewGuid().ToString("N"));
        try
        {
            var first = await Cli.RunAsync("run", Cli.Spec("valid.yaml"), "--output", "json", "--state", state);
            Assert.True(first.ExitCode == 0, first.StandardError);
            var second = await Cli.RunAsync("run", Cli.Spec("valid.yaml"), "--output", "json", "--state", state);
            Assert.True(second.ExitCode == 0, second.StandardError);
            Assert.Contains("Resuming", second.StandardError, StringComparison.Ordinal);

            static Dictionary<string, (string Status, int Attempts)> Jobs(string json)
            {
                using var doc = JsonDocument.Parse(json);
                return doc.RootElement.GetProperty("jobs").EnumerateArray().ToDictionary(
                    j => j.GetProperty("jobId").GetString()!,
                    j => (j.GetProperty("status").GetString()!, j.GetProperty("attempts").GetArrayLength()));
            }

            // Same jobs, same attempts: nothing ran twice.
            Assert.Equal(Jobs(first.StandardOutput), Jobs(second.StandardOutput));
        }
        finally
        {
            if (Directory.Exists(state))
            {
                Directory.Delete(state, recursive: true);
            }
        }
    }

    [Fact]
    public async Task Simulate_AllProfiles_Json_HasOneEntryPerProfile_AndIsDeterministic()
    {
        var a = await Cli.RunAsync("simulate", "--workload", Cli.Spec("small.jsonl"), "--profile", "all", "--seed", "7", "--output", "json");
        Assert.True(a.ExitCode == 0, a.StandardError);
        using var doc = JsonDocument.Parse(a.StandardOutput);
        var profiles = doc.RootElement.GetProperty("profiles").EnumerateArray().ToList();
        Assert.Equal(["ec2", "spot", "fargate"], profiles.Select(p => p.GetProperty("profile").GetString()));
        foreach (var p in profiles)
        {
            Assert.Equal(40, p.GetProperty("jobs").GetInt32() + p.GetProperty("unrunnable").GetInt32());
            Assert.True(p.GetProperty("costUsd").GetDouble() >= p.GetProperty("costLowerBoundUsd").GetDouble());
            Assert.InRange(p.GetProperty("utilization").GetDouble(), 0, 1);
            foreach (var field in new[] { "makespanSeconds", "waitSeconds", "peakHosts", "costRatio", "dispatchedPerWallSecond" })
            {
                Assert.True(p.TryGetProperty(field, out _), field);
            }
        }

        var b = await Cli.RunAsync("simulate", "--workload", Cli.Spec("small.jsonl"), "--profile", "ec2", "--seed", "7", "--output", "json");
        using var docB = JsonDocument.Parse(b.StandardOutput);
        var ec2A = profiles[0];
        var ec2B = docB.RootElement.GetProperty("profiles")[0];
        Assert.Equal(ec2A.GetProperty("costUsd").GetDouble(), ec2B.GetProperty("costUsd").GetDouble());
        Assert.Equal(ec2A.GetProperty("makespanSeconds").GetDouble(), ec2B.GetProperty("makespanSeconds").GetDouble());
    }

    /// <summary>The example workload README.md and docs/simulator.md point at replays every one of its jobs on every built-in profile.</summary>
    [Fact]
    public async Task Simulate_TheExampleWorkload_RunsEveryJobOnEveryProfile()
    {
        var root = Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "..");
        var workload = Path.Combine(root, "examples", "workload.jsonl");
        var lines = File.ReadLines(workload).Count(l => !string.IsNullOrWhiteSpace(l));

        var r = await Cli.RunAsync("simulate", "--workload", workload, "--output", "json");

        Assert.True(r.ExitCode == 0, r.StandardError);
        Assert.InRange(lines, 24, 100); // a few dozen jobs: replays in a moment
        using var doc = JsonDocument.Parse(r.StandardOutput);
        var profiles = doc.RootElement.GetProperty("profiles").EnumerateArray().ToList();
        Assert.Equal(["ec2", "spot", "fargate"], profiles.Select(p => p.GetProperty("profile").GetString()));
        Assert.All(profiles, p =>
        {
            Assert.Equal(lines, p.GetProperty("jobs").GetInt32());
            Assert.Equal(0, p.GetProperty("unrunnable").GetInt32());
        });
        foreach (var page in new[] { "README.md", Path.Combine("docs", "simulator.md") })
        {
            Assert.Contains("simulate --workload examples/workload.jsonl", File.ReadAllText(Path.Combine(root, page)), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Simulate_CostBreakdown_AddsWhereTheCostGoes()
    {
        var r = await Cli.RunAsync("simulate", "--workload", Cli.Spec("small.jsonl"), "--profile", "ec2", "--output", "json", "--cost-breakdown");
        Assert.True(r.ExitCode == 0, r.StandardError);
        using var doc = JsonDocument.Parse(r.StandardOutput);
        var ec2 = doc.RootElement.GetProperty("profiles")[0];
        var b = ec2.GetProperty("costBreakdown");
        var parts = new[] { "jobsAtCheapestUsd", "typePremiumUsd", "sizeRoundingUsd", "oneJobOnLargerHostUsd", "unusedOnBusyHostsUsd", "idleBetweenJobsUsd", "idleBeforeScaleInUsd", "bootUsd", "minimumBillingUsd" }
            .Sum(name => b.GetProperty(name).GetDouble());
        Assert.Equal(ec2.GetProperty("costUsd").GetDouble(), parts, 1e-4);

        var plain = await Cli.RunAsync("simulate", "--workload", Cli.Spec("small.jsonl"), "--profile", "ec2", "--output", "json");
        Assert.DoesNotContain("costBreakdown", plain.StandardOutput, StringComparison.Ordinal);
    }

    /// <summary>
    /// The workload's format comes from its extension (a JSON-lines file under a name with ".swf" in it is JSON lines),
    /// records the reader skipped are in the table, and a file where no record is SWF exits 2 instead of reporting 0 jobs.
    /// </summary>
    [Fact]
    public async Task Simulate_ReadsTheFormatByExtension_ShowsSkippedRecords_AndRefusesAFileOfMalformedRecords()
    {
        var dir = Path.Combine(Path.GetTempPath(), "batchcore-sim-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var jsonl = Path.Combine(dir, "export.swf.jsonl");
            File.WriteAllText(jsonl, "{\"submitTime\": 0, \"vcpus\": 1, \"runtimeSeconds\": 60}\n");
            var ok = await Cli.RunAsync("simulate", "--workload", jsonl, "--profile", "ec2", "--output", "json");
            Assert.True(ok.ExitCode == 0, ok.StandardError);
            using (var doc = JsonDocument.Parse(ok.StandardOutput))
            {
                Assert.Equal(1, doc.RootElement.GetProperty("profiles")[0].GetProperty("jobs").GetInt32());
            }

            var swf = Path.Combine(dir, "log.swf");
            File.WriteAllText(swf, "1 0 0 30 1 -1 -1 1 60 -1 1 1 1 -1 -1 -1 -1 -1\n2 5 0 -1 1 -1 -1 1 60 -1 0 1 1 -1 -1 -1 -1 -1\n3 bad\n");
            var table = await Cli.RunAsync("simulate", "--workload", swf, "--profile", "ec2");
            Assert.True(table.ExitCode == 0, table.StandardError);
            Assert.Contains("2 records skipped", table.StandardOutput, StringComparison.Ordinal);
            Assert.Contains("1 malformed record", table.StandardOutput, StringComparison.Ordinal);
            Assert.Contains("1 run time <= 0 or unknown", table.StandardOutput, StringComparison.Ordinal);

            var notSwf = Path.Combine(dir, "jobs.swf");
            File.WriteAllText(notSwf, "{\"submitTime\": 0, \"vcpus\": 1, \"runtimeSeconds\": 60}\n{\"submitTime\": 5, \"vcpus\": 1, \"runtimeSeconds\": 60}\n");
            var bad = await Cli.RunAsync("simulate", "--workload", notSwf, "--profile", "ec2");
            Assert.Equal(2, bad.ExitCode);
            Assert.Contains("none of its 2 records", bad.StandardError, StringComparison.Ordinal);
            Assert.DoesNotContain("Unhandled exception", bad.StandardError, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>A JSON-lines workload with a misspelt field is an error naming the line and the field, not a line silently skipped.</summary>
    [Fact]
    public async Task Simulate_JsonLinesWithAnUnknownField_ExitsTwo_NamingTheLine()
    {
        var path = Path.Combine(Path.GetTempPath(), "batchcore-sim-" + Guid.NewGuid().ToString("N") + ".jsonl");
        File.WriteAllText(path, "{\"submitTime\": 0, \"vcpus\": 1, \"runtimeSeconds\": 60}\n{\"submitTime\": 0, \"vcpus\": 1, \"runtime\": 60}\n");
        try
        {
            var r = await Cli.RunAsync("simulate", "--workload", path, "--profile", "ec2");

            Assert.Equal(2, r.ExitCode);
            Assert.Contains("workload line 2: runtime is not a field of a workload line", r.StandardError, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Simulate_MissingWorkload_ExitsTwo()
    {
        var r = await Cli.RunAsync("simulate", "--workload", "/nonexistent.swf");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("does not exist", r.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Quickstart_IsValid_AndRequiresOnlyKnownThings()
    {
        var quickstart = Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "..", "examples", "quickstart.yaml");
        var r = await Cli.RunAsync("validate", quickstart);
        Assert.True(r.ExitCode == 0, r.StandardOutput + r.StandardError);

        var bad = Path.Combine(Path.GetTempPath(), "bc-requires-" + Guid.NewGuid().ToString("N") + ".yaml");
        await File.WriteAllTextAsync(bad, (await File.ReadAllTextAsync(quickstart, TestContext.Current.CancellationToken)).Replace("requires: docker", "requires: kubernetes", StringComparison.Ordinal), TestContext.Current.CancellationToken);
        try
        {
            var invalid = await Cli.RunAsync("validate", bad);
            Assert.Equal(2, invalid.ExitCode);
            Assert.Contains("computeEnvironments[1].requires: must be \"docker\"", invalid.StandardOutput, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(bad);
        }
    }

    [Fact]
    public async Task Logs_WithoutState_ClearError()
    {
        var r = await Cli.RunAsync("logs", "x", "--state", Path.Combine(Path.GetTempPath(), "batchcore-none-" + Guid.NewGuid().ToString("N")));

        Assert.Equal(2, r.ExitCode);
        Assert.Contains("no run state", r.StandardError);
    }
}

public sealed class AdviseTests
{
    [Fact]
    public async Task Advise_Json_OneVerdictPerDefinition()
    {
        var r = await Cli.RunAsync("advise", Cli.Spec("advise.yaml"), "--output", "json");

        Assert.Equal(0, r.ExitCode);
        using var doc = JsonDocument.Parse(r.StandardOutput);
        var defs = doc.RootElement.GetProperty("jobDefinitions").EnumerateArray().ToDictionary(d => d.GetProperty("jobDefinitionName").GetString()!);
        Assert.Equal("FARGATE", defs["small"].GetProperty("platform").GetString());
        Assert.Equal(4, defs["small"].GetProperty("expectedJobs").GetInt32());
        Assert.Equal("EC2", defs["gpu"].GetProperty("platform").GetString());
        Assert.Contains(defs["gpu"].GetProperty("reasons").EnumerateArray(), x => x.GetString()!.Contains("GPU", StringComparison.Ordinal));
        Assert.Equal("EC2", defs["many"].GetProperty("platform").GetString());
        Assert.Equal(10_000, defs["many"].GetProperty("expectedJobs").GetInt32());
    }

    /// <summary>advise checks the spec as validate does (it advised FARGATE for a definition AWS rejects, and 0 jobs for a queue that does not exist).</summary>
    [Fact]
    public async Task Advise_InvalidSpec_ExitsTwo_WithEveryProblemAsValidateSaysIt()
    {
        using var file = Cli.TempSpec("""
            jobDefinitions:
              - jobDefinitionName: no-memory
                type: container
                containerProperties:
                  command: ["true"]
                  resourceRequirements: [{ type: VCPU, value: "1" }]
              - jobDefinitionName: empty
                type: container
            jobs:
              - { jobName: a, jobQueue: nowhere, jobDefinition: empty }
            """);

        var advise = await Cli.RunAsync("advise", file.Path, "--output", "json");
        var validate = await Cli.RunAsync("validate", file.Path);

        Assert.Equal(2, advise.ExitCode);
        Assert.Equal("", advise.StandardOutput.Trim());
        Assert.Equal(
            [
                "jobDefinitions[0].containerProperties.resourceRequirements: must give MEMORY (the memory hard limit in MiB is required)",
                "jobDefinitions[1].containerProperties: is required for a container job definition (containerProperties or eksProperties must be provided)",
                "jobs[0].jobQueue: nowhere does not exist",
                "jobs[0].jobDefinition: empty does not exist",
            ],
            Cli.Lines(advise.StandardError));
        Assert.Equal(Cli.Lines(validate.StandardOutput), Cli.Lines(advise.StandardError));
    }

    [Fact]
    public async Task Advise_Table_NamesPlatforms()
    {
        var r = await Cli.RunAsync("advise", Cli.Spec("advise.yaml"));

        Assert.Equal(0, r.ExitCode);
        Assert.Contains("FARGATE", r.StandardOutput);
        Assert.Contains("EC2", r.StandardOutput);
    }
}

public sealed class PackTests
{
    [Fact]
    public async Task Pack_SmallCsv_HostsAndLowerBound()
    {
        var r = await Cli.RunAsync("pack", "--jobs", Cli.Spec("pack.csv"), "--host", "4,4096");

        Assert.Equal(0, r.ExitCode);
        using var doc = JsonDocument.Parse(r.StandardOutput);
        Assert.Equal(2, doc.RootElement.GetProperty("hosts").GetInt32());
        Assert.Equal(2, doc.RootElement.GetProperty("lowerBound").GetInt32());
        Assert.Equal(4, doc.RootElement.GetProperty("jobs").GetInt32());
        var placements = doc.RootElement.GetProperty("placements").EnumerateArray().ToList();
        Assert.Equal([0, 1, 2, 3], placements.Select(p => p.GetProperty("job").GetInt32()));
        // 3+1 and 2+2 vCPUs: jobs 0 and 1 share a host, 2 and 3 the other.
        Assert.Equal(placements[0].GetProperty("host").GetInt32(), placements[1].GetProperty("host").GetInt32());
        Assert.Equal(placements[2].GetProperty("host").GetInt32(), placements[3].GetProperty("host").GetInt32());
    }

    [Theory]
    [InlineData("first-fit")]
    [InlineData("best-fit")]
    [InlineData("spread")]
    public async Task Pack_OtherStrategies_NeverBelowLowerBound(string strategy)
    {
        var r = await Cli.RunAsync("pack", "--jobs", Cli.Spec("pack.csv"), "--host", "4,4096", "--strategy", strategy);

        Assert.Equal(0, r.ExitCode);
        using var doc = JsonDocument.Parse(r.StandardOutput);
        Assert.True(doc.RootElement.GetProperty("hosts").GetInt32() >= doc.RootElement.GetProperty("lowerBound").GetInt32());
    }

    [Fact]
    public async Task Pack_MalformedLine_ExitsTwo_NamingTheLine()
    {
        var r = await Cli.RunAsync("pack", "--jobs", Cli.Spec("pack-bad.csv"), "--host", "4,4096");

        Assert.Equal(2, r.ExitCode);
        Assert.Contains("line 3", r.StandardError);
    }

    [Fact]
    public async Task Pack_JobLargerThanHost_ExitsTwo_NamingTheLine()
    {
        var r = await Cli.RunAsync("pack", "--jobs", Cli.Spec("pack-too-big.csv"), "--host", "4,4096");

        Assert.Equal(2, r.ExitCode);
        Assert.Contains("line 4", r.StandardError);
        Assert.Contains("larger than the host", r.StandardError);
    }

    [Fact]
    public async Task Pack_FractionalVcpus_Table()
    {
        var file = Path.Combine(Path.GetTempPath(), $"batchcore-pack-{Guid.NewGuid():N}.csv");
        await File.WriteAllTextAsync(file, "vcpus,memoryMiB,gpus\n0.5,512,0\n0.25,256,1\n1.25,1024,1\n", TestContext.Current.CancellationToken);
        try
        {
            var r = await Cli.RunAsync("pack", "--jobs", file, "--host", "2,2048,2", "--output", "table");

            Assert.Equal(0, r.ExitCode);
            Assert.Contains("1 hosts for 3 jobs", r.StandardOutput);
        }
        finally
        {
            File.Delete(file);
        }
    }
}

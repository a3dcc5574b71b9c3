using BatchCore.Model;

namespace BatchCore.Tests.Validation;

/// <summary>Every rule of the resource requests, broken: one BatchClientException naming the field and the rule, nothing applied.</summary>
public class ValidationTests
{
    private static async Task<BatchClientException> Rejects(Func<BatchEngine, Task> act, string expected)
    {
        await using var engine = await TestEngine.WithQueueAsync();
        var e = await Assert.ThrowsAsync<BatchClientException>(() => act(engine));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        return e;
    }

    public static TheoryData<string, SubmitJobRequest, string> BadSubmissions => new()
    {
        { "array too big", TestEngine.Job(arraySize: 10_001), "arrayProperties.size must be between 2 and 10000, was 10001" },
        { "array too small", TestEngine.Job(arraySize: 1), "arrayProperties.size must be between 2 and 10000, was 1" },
        { "name with dot", TestEngine.Job("bad.name"), "jobName may contain only letters, digits, hyphens and underscores" },
        { "leading hyphen", TestEngine.Job("-bad"), "jobName must start with a letter or digit" },
        { "name too long", TestEngine.Job(new string('a', 129)), "jobName must be at most 128 characters" },
        { "unknown queue", TestEngine.Job(queue: "nope"), "jobQueue nope does not exist" },
        { "unknown definition", TestEngine.Job(def: "nope"), "jobDefinition nope does not exist" },
        { "unknown dependency", TestEngine.Job(dependsOn: [new() { JobId = "missing" }]), "dependsOn[0].jobId missing does not exist" },
        { "too many dependencies", TestEngine.Job(dependsOn: [.. Enumerable.Range(0, 21).Select(i => new JobDependency { JobId = $"j{i}" })]), "dependsOn must have at most 20 entries, had 21" },
        { "sequential without array", TestEngine.Job(dependsOn: [new() { Type = ArrayJobDependency.SEQUENTIAL }]), "SEQUENTIAL applies only to array jobs" },
        { "bad dependency type", TestEngine.Job(dependsOn: [new() { JobId = "x", Type = "ALL" }]), "dependsOn[0].type must be one of N_TO_N | SEQUENTIAL, was ALL" },
        { "reserved env", TestEngine.Job() with { ContainerOverrides = new() { Environment = [new("AWS_BATCH_X", "1")] } }, "containerOverrides.environment[0].name must not start with AWS_BATCH" },
        { "bad vcpu", TestEngine.Job() with { ContainerOverrides = new() { ResourceRequirements = [new(ResourceType.VCPU, "abc")] } }, "VCPU must be a positive number" },
        { "memory too small", TestEngine.Job() with { ContainerOverrides = new() { ResourceRequirements = [new(ResourceType.MEMORY, "2")] } }, "MEMORY must be a whole number of MiB, at least 4" },
        { "ec2 fractional vcpu", TestEngine.Job(vcpus: 0.5), "VCPU must be at least 1 for jobs on EC2 resources, was 0.5" },
        { "retry attempts", TestEngine.Job() with { RetryStrategy = new() { Attempts = 11 } }, "retryStrategy.attempts must be between 1 and 10, was 11" },
        { "evaluateOnExit without attempts", TestEngine.Job() with { RetryStrategy = new() { EvaluateOnExit = [new() { Action = "RETRY" }] } }, "retryStrategy.attempts is required when evaluateOnExit is given" },
        { "too many evaluateOnExit", TestEngine.Job() with { RetryStrategy = new() { Attempts = 2, EvaluateOnExit = [.. Enumerable.Range(0, 6).Select(_ => new EvaluateOnExit { Action = "EXIT" })] } }, "retryStrategy.evaluateOnExit must have at most 5 entries, had 6" },
        { "bad action", TestEngine.Job() with { RetryStrategy = new() { Attempts = 2, EvaluateOnExit = [new() { Action = "MAYBE" }] } }, "retryStrategy.evaluateOnExit[0].action must be one of RETRY | EXIT, was MAYBE" },
        { "glob star inside", TestEngine.Job() with { RetryStrategy = new() { Attempts = 2, EvaluateOnExit = [new() { Action = "EXIT", OnReason = "a*b" }] } }, "may contain * only at the end" },
        { "exit code glob letters", TestEngine.Job() with { RetryStrategy = new() { Attempts = 2, EvaluateOnExit = [new() { Action = "EXIT", OnExitCode = "1a" }] } }, "may contain only digits" },
        { "timeout below 1", TestEngine.Job() with { Timeout = new() { AttemptDurationSeconds = 0 } }, "timeout.attemptDurationSeconds must be at least 1, was 0" },
        { "share without policy", TestEngine.Job(share: "a"), "shareIdentifier must not be set" },
        { "priority override", TestEngine.Job() with { SchedulingPriorityOverride = 10_000 }, "schedulingPriorityOverride must be between 0 and 9999, was 10000" },
        { "too many tags", TestEngine.Job() with { Tags = Enumerable.Range(0, 51).ToDictionary(i => $"k{i}", i => "v") }, "Member must have length less than or equal to 50" },
        { "array cap not array", TestEngine.Job(arrayMaxConcurrency: 2), "extensions.arrayMaxConcurrency applies only to array jobs" },
        { "node overrides", TestEngine.Job() with { NodeOverrides = new { numNodes = 2 } }, "nodeOverrides applies only to multi-node parallel jobs" },
        { "eks overrides", TestEngine.Job() with { EksPropertiesOverride = new { } }, "eksPropertiesOverride applies only to EKS job definitions" },
        { "ecs overrides", TestEngine.Job() with { EcsPropertiesOverride = new { } }, "ecsPropertiesOverride applies only to job definitions with ecsProperties" },
        // A null element of a list (JSON null) is refused naming its index; these threw NullReferenceException.
        { "null dependency", TestEngine.Job() with { DependsOn = [null!] }, "dependsOn[0] must not be null" },
        { "null environment entry", TestEngine.Job() with { ContainerOverrides = new() { Environment = [null!] } }, "containerOverrides.environment[0] must not be null" },
        { "null resource requirement", TestEngine.Job() with { ContainerOverrides = new() { ResourceRequirements = [null!] } }, "containerOverrides.resourceRequirements[0] must not be null" },
        { "null evaluateOnExit", TestEngine.Job() with { RetryStrategy = new() { Attempts = 2, EvaluateOnExit = [null!] } }, "retryStrategy.evaluateOnExit[0] must not be null" },
        { "null consumable entry", TestEngine.Job() with { ConsumableResourcePropertiesOverride = new() { ConsumableResourceList = [null!] } }, "consumableResourcePropertiesOverride.consumableResourceList[0] must not be null" },
        { "null consumable list", TestEngine.Job() with { ConsumableResourcePropertiesOverride = new() { ConsumableResourceList = null! } }, "consumableResourcePropertiesOverride.consumableResourceList must not be null" },
        { "null parameter value", TestEngine.Job() with { Parameters = new Dictionary<string, string> { ["x"] = null! }, ContainerOverrides = new() { Command = ["echo", "Ref::x"] } }, "parameters.x must not be null" },
        { "consumable twice", TestEngine.Job() with { ConsumableResourcePropertiesOverride = new() { ConsumableResourceList = [new() { ConsumableResource = "lic", Quantity = 6 }, new() { ConsumableResource = "lic", Quantity = 6 }] } }, "consumableResourcePropertiesOverride.consumableResourceList[1].consumableResource names consumable resource lic again (entry [0])" },
        // vCPUs are counted in thousandths in an int: beyond 1,000,000 (or infinite) they would wrap.
        { "infinite vcpu", TestEngine.Job() with { ContainerOverrides = new() { ResourceRequirements = [new(ResourceType.VCPU, "Infinity")] } }, "containerOverrides.resourceRequirements[0].value VCPU must be at most 1000000" },
        { "huge vcpu", TestEngine.Job() with { ContainerOverrides = new() { ResourceRequirements = [new(ResourceType.VCPU, "1e300")] } }, "containerOverrides.resourceRequirements[0].value VCPU must be at most 1000000" },
        { "vcpu past int milli", TestEngine.Job() with { ContainerOverrides = new() { ResourceRequirements = [new(ResourceType.VCPU, "2147484")] } }, "containerOverrides.resourceRequirements[0].value VCPU must be at most 1000000" },
        { "infinite simulated run time", TestEngine.Job(runSeconds: double.PositiveInfinity), "extensions.simulatedRunTimeSeconds must be at most 1000000000 seconds" },
        { "huge simulated run time", TestEngine.Job(runSeconds: 9.3e15), "extensions.simulatedRunTimeSeconds must be at most 1000000000 seconds" },
        { "reason glob characters", TestEngine.Job() with { RetryStrategy = new() { Attempts = 2, EvaluateOnExit = [new() { Action = "EXIT", OnReason = "Out-of-memory/killed*" }] } }, "retryStrategy.evaluateOnExit[0].onReason may contain only letters, digits, periods, colons and white space" },
        { "empty exit code glob", TestEngine.Job() with { RetryStrategy = new() { Attempts = 2, EvaluateOnExit = [new() { Action = "EXIT", OnExitCode = "" }] } }, "retryStrategy.evaluateOnExit[0].onExitCode must be 1 to 512 characters, was empty" },
    };

    [Theory]
    [MemberData(nameof(BadSubmissions))]
    public async Task SubmitJob_RejectsBadInput(string rule, SubmitJobRequest request, string expected)
    {
        _ = rule;
        await using var engine = await TestEngine.WithQueueAsync();
        var e = await Assert.ThrowsAsync<BatchClientException>(() => engine.SubmitJobAsync(request));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        var listed = await engine.ListJobsAsync(new ListJobsRequest { JobQueue = "q", Filters = [new() { Name = "JOB_NAME", Values = ["*"] }] });
        Assert.Empty(listed.JobSummaryList); // nothing partially applied
    }

    [Fact]
    public async Task Timeout_Below60_IsRejected_UnlessShortTimeoutsAllowed()
    {
        await using var engine = new BatchEngine(new BatchEngineOptions { VirtualTime = true });
        var e = await Assert.ThrowsAsync<BatchClientException>(() => engine.RegisterJobDefinitionAsync(TestEngine.Definition("d", timeout: 3)));
        Assert.Contains("timeout.attemptDurationSeconds must be at least 60", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReportsEveryProblem_NotJustTheFirst()
    {
        var e = await Rejects(engine => engine.SubmitJobAsync(new SubmitJobRequest { JobName = "-x", ArrayProperties = new() { Size = 1 } }), "jobName");
        Assert.True(e.Problems.Count >= 4, string.Join(" | ", e.Problems));
    }

    public static TheoryData<string, RegisterJobDefinitionRequest, string> BadDefinitions => new()
    {
        { "multinode", TestEngine.Definition("d") with { Type = JobDefinitionType.multinode }, "multinode (multi-node parallel) job definitions are not supported" },
        { "ecsProperties", TestEngine.Definition("d") with { EcsProperties = new { } }, "ecsProperties is not supported by BatchCore: describe the container with containerProperties" },
        { "eksProperties", TestEngine.Definition("d") with { EksProperties = new { } }, "eksProperties is not supported by BatchCore" },
        { "no container", new RegisterJobDefinitionRequest { JobDefinitionName = "d", Type = "container" }, "containerProperties is required" },
        { "bad type", TestEngine.Definition("d") with { Type = "lambda" }, "type must be one of container, was lambda" },
        { "reserved env", TestEngine.Definition("d") with { ContainerProperties = TestEngine.Definition("d").ContainerProperties! with { Environment = [new("AWS_BATCH_JOB_ID", "x")] } }, "must not start with AWS_BATCH" },
        { "fargate gpu", Fargate(1, 2048) with { ContainerProperties = Fargate(1, 2048).ContainerProperties! with { ResourceRequirements = [new("VCPU", "1"), new("MEMORY", "2048"), new("GPU", "1")] } }, "GPU resources are not available for jobs that run on Fargate" },
        { "fargate bad pair", Fargate(1, 1024), "VCPU 1 with MEMORY 1024 is not a valid Fargate size" },
        { "fargate bad vcpu", Fargate(3, 8192), "VCPU must be one of 0.25, 0.5, 1, 2, 4, 8, 16 on Fargate" },
        { "fargate privileged", Fargate(1, 2048) with { ContainerProperties = Fargate(1, 2048).ContainerProperties! with { Privileged = true } }, "privileged must not be true on Fargate" },
        { "fargate devices", Fargate(1, 2048) with { ContainerProperties = Fargate(1, 2048).ContainerProperties! with { LinuxParameters = new() { Devices = [new() { HostPath = "/dev/x" }] } } }, "devices are not supported on Fargate" },
        { "fargate swap", Fargate(1, 2048) with { ContainerProperties = Fargate(1, 2048).ContainerProperties! with { LinuxParameters = new() { MaxSwap = 10 } } }, "swap is not supported on Fargate" },
        { "bad platform", TestEngine.Definition("d") with { PlatformCapabilities = ["LAMBDA"] }, "platformCapabilities must be one of EC2 | FARGATE" },
        { "scheduling priority", TestEngine.Definition("d") with { SchedulingPriority = 10_000 }, "schedulingPriority must be between 0 and 9999" },
        { "missing vcpu", TestEngine.Definition("d") with { ContainerProperties = new() { Image = "x", ResourceRequirements = [new("MEMORY", "512")] } }, "must give VCPU" },
        { "duplicate requirement", TestEngine.Definition("d") with { ContainerProperties = new() { Image = "x", ResourceRequirements = [new("VCPU", "1"), new("VCPU", "2"), new("MEMORY", "512")] } }, "VCPU is given more than once" },
        { "bad name", TestEngine.Definition("bad name"), "jobDefinitionName may contain only letters" },
        { "mount of unknown volume", Ec2With(c => c with { Volumes = [new() { Name = "data", Host = new() { SourcePath = "/srv" } }], MountPoints = [new() { ContainerPath = "/data", SourceVolume = "scratch" }] }), "containerProperties.mountPoints[0].sourceVolume must name one of the volumes, was 'scratch'" },
        { "relative mount", Ec2With(c => c with { Volumes = [new() { Name = "data" }], MountPoints = [new() { ContainerPath = "data", SourceVolume = "data" }] }), "containerProperties.mountPoints[0].containerPath must be an absolute path, was 'data'" },
        { "duplicate volume", Ec2With(c => c with { Volumes = [new() { Name = "v" }, new() { Name = "v" }] }), "containerProperties.volumes[1].name v is given more than once" },
        { "host and efs", Ec2With(c => c with { Volumes = [new() { Name = "v", Host = new() { SourcePath = "/srv" }, EfsVolumeConfiguration = new() { FileSystemId = "fs-1" } }] }), "containerProperties.volumes[0] must have host or efsVolumeConfiguration, not both" },
        { "efs iam unencrypted", Ec2With(c => c with { Volumes = [new() { Name = "v", EfsVolumeConfiguration = new() { FileSystemId = "fs-1", AuthorizationConfig = new() { Iam = "ENABLED" } } }] }), "transitEncryption must be ENABLED when authorizationConfig uses IAM or an access point" },
        { "ulimit soft over hard", Ec2With(c => c with { Ulimits = [new() { Name = "nofile", SoftLimit = 2048, HardLimit = 1024 }] }), "containerProperties.ulimits[0].softLimit must not exceed hardLimit 1024, was 2048" },
        { "fargate ulimits", Fargate(1, 2048) with { ContainerProperties = Fargate(1, 2048).ContainerProperties! with { ExecutionRoleArn = "arn:aws:iam::1:role/x", Ulimits = [new() { Name = "nofile", SoftLimit = 1, HardLimit = 1 }] } }, "containerProperties.ulimits are not supported on Fargate" },
        { "reserved secret", Ec2With(c => c with { Secrets = [new() { Name = "AWS_BATCH_X", ValueFrom = "arn:aws:ssm:x" }] }), "containerProperties.secrets[0].name must not start with AWS_BATCH" },
        { "secret without source", Ec2With(c => c with { Secrets = [new() { Name = "TOKEN" }] }), "containerProperties.secrets[0].valueFrom is required" },
        { "fargate log driver", Fargate(1, 2048) with { ContainerProperties = Fargate(1, 2048).ContainerProperties! with { LogConfiguration = new() { LogDriver = "json-file" } } }, "containerProperties.logConfiguration.logDriver must be one of awslogs | splunk, was json-file" },
        { "ec2 network configuration", Ec2With(c => c with { NetworkConfiguration = new() { AssignPublicIp = "ENABLED" } }), "containerProperties.networkConfiguration is only for jobs on Fargate resources" },
        { "ec2 ephemeral storage", Ec2With(c => c with { EphemeralStorage = new() { SizeInGiB = 50 } }), "containerProperties.ephemeralStorage is only for jobs on Fargate resources" },
        { "ephemeral storage size", Fargate(1, 2048) with { ContainerProperties = Fargate(1, 2048).ContainerProperties! with { EphemeralStorage = new() { SizeInGiB = 500 } } }, "containerProperties.ephemeralStorage.sizeInGiB must be between 21 and 200, was 500" },
        { "device without host path", Ec2With(c => c with { LinuxParameters = new() { Devices = [new() { ContainerPath = "/dev/x" }] } }), "containerProperties.linuxParameters.devices[0].hostPath is required" },
        { "device permission", Ec2With(c => c with { LinuxParameters = new() { Devices = [new() { HostPath = "/dev/x", Permissions = ["EXECUTE"] }] } }), "containerProperties.linuxParameters.devices[0].permissions must be one of READ | WRITE | MKNOD, was EXECUTE" },
        { "swappiness", Ec2With(c => c with { LinuxParameters = new() { Swappiness = 101 } }), "containerProperties.linuxParameters.swappiness must be between 0 and 100, was 101" },
        { "tmpfs size", Ec2With(c => c with { LinuxParameters = new() { Tmpfs = [new() { ContainerPath = "/t", Size = 0 }] } }), "containerProperties.linuxParameters.tmpfs[0].size must be a positive number of MiB, was 0" },
        { "ec2 fargate platform", Ec2With(c => c with { FargatePlatformConfiguration = new() { PlatformVersion = "LATEST" } }), "containerProperties.fargatePlatformConfiguration is only for jobs on Fargate resources" },
        { "bad public ip", Fargate(1, 2048) with { ContainerProperties = Fargate(1, 2048).ContainerProperties! with { NetworkConfiguration = new() { AssignPublicIp = "YES" } } }, "containerProperties.networkConfiguration.assignPublicIp must be one of ENABLED | DISABLED, was YES" },
        { "null environment entry", Ec2With(c => c with { Environment = [null!] }), "containerProperties.environment[0] must not be null" },
        { "null resource requirement", Ec2With(c => c with { ResourceRequirements = [null!] }), "containerProperties.resourceRequirements[0] must not be null" },
        { "null platform capability", TestEngine.Definition("d") with { PlatformCapabilities = [null!] }, "platformCapabilities[0] must be one of EC2 | FARGATE, was null" },
        { "null evaluateOnExit", TestEngine.Definition("d") with { RetryStrategy = new() { Attempts = 2, EvaluateOnExit = [null!] } }, "retryStrategy.evaluateOnExit[0] must not be null" },
        { "null consumable entry", TestEngine.Definition("d") with { ConsumableResourceProperties = new() { ConsumableResourceList = [null!] } }, "consumableResourceProperties.consumableResourceList[0] must not be null" },
        { "consumable by name and arn", TestEngine.Definition("d") with { ConsumableResourceProperties = new() { ConsumableResourceList = [new() { ConsumableResource = "lic", Quantity = 1 }, new() { ConsumableResource = "arn:aws:batch:local:000000000000:consumable-resource/lic", Quantity = 1 }] } }, "consumableResourceProperties.consumableResourceList[1].consumableResource names consumable resource lic again (entry [0])" },
    };

    private static RegisterJobDefinitionRequest Ec2With(Func<ContainerProperties, ContainerProperties> change) =>
        TestEngine.Definition("d") with { ContainerProperties = change(TestEngine.Definition("d").ContainerProperties!) };

    /// <summary>
    /// A definition written for AWS, with every container field AWS has, registers and reads back as written (Fargate:
    /// network, storage, platform version; EC2: volumes, mounts, ulimits), and its jobs run.
    /// </summary>
    [Fact]
    public async Task ContainerFieldsFromAws_AreAccepted_AndEchoed()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        var ec2 = Ec2With(c => c with
        {
            Volumes =
            [
                new() { Name = "scratch", Host = new() { SourcePath = "/tmp" } },
                new() { Name = "shared", EfsVolumeConfiguration = new() { FileSystemId = "fs-12345678", TransitEncryption = "ENABLED", AuthorizationConfig = new() { AccessPointId = "fsap-1", Iam = "ENABLED" } } },
            ],
            MountPoints = [new() { ContainerPath = "/scratch", SourceVolume = "scratch" }, new() { ContainerPath = "/shared", SourceVolume = "shared", ReadOnly = true }],
            Ulimits = [new() { Name = "nofile", SoftLimit = 1024, HardLimit = 4096 }],
            Secrets = [new() { Name = "DB_PASSWORD", ValueFrom = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db" }],
            LogConfiguration = new() { LogDriver = "awslogs", Options = new Dictionary<string, string> { ["awslogs-group"] = "/batch/x" } },
            EnableExecuteCommand = true,
            RepositoryCredentials = new() { CredentialsParameter = "arn:aws:secretsmanager:us-east-1:123456789012:secret:registry" },
        }) with { JobDefinitionName = "aws-shaped" };
        await engine.RegisterJobDefinitionAsync(ec2);
        var fargate = Fargate(1, 2048) with
        {
            JobDefinitionName = "aws-fargate",
            ContainerProperties = Fargate(1, 2048).ContainerProperties! with
            {
                ExecutionRoleArn = "arn:aws:iam::123456789012:role/exec",
                NetworkConfiguration = new() { AssignPublicIp = "ENABLED" },
                EphemeralStorage = new() { SizeInGiB = 50 },
                FargatePlatformConfiguration = new() { PlatformVersion = "LATEST" },
                LogConfiguration = new() { LogDriver = "awslogs" },
            },
        };
        await engine.RegisterJobDefinitionAsync(fargate);

        var read = (await engine.DescribeJobDefinitionsAsync(new() { JobDefinitionName = "aws-shaped" })).JobDefinitions.Single().ContainerProperties!;
        Assert.Equal(ec2.ContainerProperties!.Volumes, read.Volumes);
        Assert.Equal(ec2.ContainerProperties.MountPoints, read.MountPoints);
        Assert.Equal(ec2.ContainerProperties.Ulimits, read.Ulimits);
        Assert.Equal(ec2.ContainerProperties.Secrets, read.Secrets);
        Assert.Equal("/batch/x", read.LogConfiguration!.Options!["awslogs-group"]);
        Assert.Equal((true, ec2.ContainerProperties.RepositoryCredentials), (read.EnableExecuteCommand, read.RepositoryCredentials));
        var f = (await engine.DescribeJobDefinitionsAsync(new() { JobDefinitionName = "aws-fargate" })).JobDefinitions.Single().ContainerProperties!;
        Assert.Equal((50, "ENABLED", "LATEST"), (f.EphemeralStorage!.SizeInGiB, f.NetworkConfiguration!.AssignPublicIp, f.FargatePlatformConfiguration!.PlatformVersion));

        var job = await engine.SubmitJobAsync(TestEngine.Job(def: "aws-shaped"));
        await engine.RunUntilIdleAsync();
        Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(job.JobId));
    }

    private static RegisterJobDefinitionRequest Fargate(double vcpus, int memory)
    {
        var d = TestEngine.Definition("f", vcpus, memory);
        return d with
        {
            PlatformCapabilities = [PlatformCapability.FARGATE],
            ContainerProperties = d.ContainerProperties! with { ExecutionRoleArn = "arn:aws:iam::123456789012:role/exec" },
        };
    }

    /// <summary>
    /// AWS's payload limits: a SubmitJob request of at most 30 KiB and a job definition of at most 24 KiB as JSON (both
    /// configurable in BatchQuotas); a large request under the limit passes (the exact measurement, not the estimate).
    /// </summary>
    [Fact]
    public async Task PayloadLimits_RejectOversizedSubmitsAndDefinitions_NamingTheLimit()
    {
        var big = TestEngine.Job() with { Parameters = new Dictionary<string, string> { ["blob"] = new string('x', 40_000) } };
        var e = await Rejects(engine => engine.SubmitJobAsync(big), "the SubmitJob request must be at most 30720 bytes as JSON");
        Assert.Matches(@"was 40\d\d\d\b", e.Message); // the 40,000-character value and the rest of the request

        await using (var engine = await TestEngine.WithQueueAsync())
        {
            var under = TestEngine.Job() with { Parameters = new Dictionary<string, string> { ["blob"] = new string('x', 25_000) } };
            var accepted = await engine.SubmitJobAsync(under);
            await engine.RunUntilIdleAsync();
            Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(accepted.JobId));
        }

        await using (var roomy = await TestEngine.WithQueueAsync(options: new BatchEngineOptions { Quotas = new BatchQuotas { MaxSubmitJobPayloadBytes = 100 * 1024 } }))
        {
            await roomy.SubmitJobAsync(big); // the quota is configurable
        }

        var definition = TestEngine.Definition("huge") with
        {
            ContainerProperties = TestEngine.Definition("huge").ContainerProperties! with { Command = ["echo", new string('y', 30_000)] },
        };
        await Rejects(engine => engine.RegisterJobDefinitionAsync(definition), "the job definition must be at most 24576 bytes as JSON");
    }

    /// <summary>
    /// The deprecated containerOverrides.vcpus / memory override a definition's legacy vcpus / memory (the job reserves
    /// what they say), and are refused against a definition that gives them as resource requirements (AWS).
    /// </summary>
    [Fact]
    public async Task LegacyVcpusAndMemoryOverrides_ReplaceOnlyLegacyValues()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 1, vcpus: 4);
        await engine.RegisterJobDefinitionAsync(new RegisterJobDefinitionRequest
        {
            JobDefinitionName = "legacy",
            Type = JobDefinitionType.container,
            ContainerProperties = new ContainerProperties { Image = "busybox", Command = ["true"], Vcpus = 1, Memory = 512 },
        });
        var job = await engine.SubmitJobAsync(TestEngine.Job(def: "legacy") with { ContainerOverrides = new() { Vcpus = 2, Memory = 1024 } });
        var requirements = (await engine.DescribeAsync(job.JobId)).Container!.ResourceRequirements!;
        Assert.Equal(["2", "1024"], requirements.Select(q => q.Value));

        var e = await Assert.ThrowsAsync<BatchClientException>(() => engine.SubmitJobAsync(TestEngine.Job() with { ContainerOverrides = new() { Vcpus = 2 } }));
        Assert.Contains("containerOverrides.vcpus cannot override a VCPU given in the job definition's resourceRequirements", e.Message, StringComparison.Ordinal);
        e = await Assert.ThrowsAsync<BatchClientException>(() => engine.SubmitJobAsync(TestEngine.Job(def: "legacy") with { ContainerOverrides = new() { Memory = 2 } }));
        Assert.Contains("containerOverrides.memory must be between 4 and", e.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// AWS requires an execution role on Fargate; a journal written before BatchCore checked it still recovers (the
    /// rule is not applied to replayed records).
    /// </summary>
    [Fact]
    public async Task FargateDefinition_NeedsAnExecutionRole_ExceptWhenRecovered()
    {
        var noRole = Fargate(1, 2048) with { ContainerProperties = Fargate(1, 2048).ContainerProperties! with { ExecutionRoleArn = null } };
        await Rejects(engine => engine.RegisterJobDefinitionAsync(noRole), "containerProperties.executionRoleArn is required for jobs on Fargate resources");

        var p = new BatchCore.Validation.Problems();
        BatchCore.Validation.ResourceValidation.ValidateJobDefinition(noRole, p, new BatchEngineOptions(), recovering: true);
        Assert.Empty(p.Items);
        // fargatePlatformConfiguration on EC2 was accepted before BatchCore checked it: a journal holding one still opens.
        var ec2WithFargateField = Ec2With(c => c with { FargatePlatformConfiguration = new() { PlatformVersion = "LATEST" } });
        BatchCore.Validation.ResourceValidation.ValidateJobDefinition(ec2WithFargateField, p, new BatchEngineOptions(), recovering: true);
        Assert.Empty(p.Items);
        BatchCore.Validation.ResourceValidation.ValidateJobDefinition(Fargate(1, 2048), p, new BatchEngineOptions());
        Assert.Empty(p.Items);
    }

    [Theory]
    [MemberData(nameof(BadDefinitions))]
    public async Task RegisterJobDefinition_RejectsBadInput(string rule, RegisterJobDefinitionRequest request, string expected)
    {
        _ = rule;
        await Rejects(engine => engine.RegisterJobDefinitionAsync(request), expected);
    }

    public static TheoryData<string, CreateComputeEnvironmentRequest, string> BadComputeEnvironments => new()
    {
        { "no type", new() { ComputeEnvironmentName = "x" }, "type is required" },
        { "bad type", new() { ComputeEnvironmentName = "x", Type = "HYBRID" }, "type must be one of MANAGED | UNMANAGED, was HYBRID" },
        { "created disabled", new() { ComputeEnvironmentName = "x", Type = CEType.UNMANAGED, State = ResourceState.DISABLED }, "state must be ENABLED when a compute environment is created" },
        { "managed without resources", new() { ComputeEnvironmentName = "x", Type = CEType.MANAGED }, "computeResources is required for a MANAGED compute environment" },
        { "unmanaged with resources", new() { ComputeEnvironmentName = "x", Type = CEType.UNMANAGED, ComputeResources = new() { Type = CRType.EC2, MaxvCpus = 4 } }, "computeResources must not be set for an UNMANAGED compute environment" },
        { "no maxvcpus", new() { ComputeEnvironmentName = "x", Type = CEType.MANAGED, ComputeResources = new() { Type = CRType.EC2 } }, "computeResources.maxvCpus is required" },
        { "min over max", new() { ComputeEnvironmentName = "x", Type = CEType.MANAGED, ComputeResources = new() { Type = CRType.EC2, MinvCpus = 8, MaxvCpus = 4 } }, "computeResources.minvCpus must not exceed maxvCpus (4), was 8" },
        { "unknown instance type", new() { ComputeEnvironmentName = "x", Type = CEType.MANAGED, ComputeResources = new() { Type = CRType.EC2, MaxvCpus = 4, InstanceTypes = ["unknown"] } }, "Instance type unknown does not exist" },
        { "mixed architectures", new() { ComputeEnvironmentName = "x", Type = CEType.MANAGED, ComputeResources = new() { Type = CRType.EC2, MaxvCpus = 4, InstanceTypes = ["m6i", "m6g"] } }, "cannot mix x86_64 and arm64 instance types" },
        { "fargate instance types", new() { ComputeEnvironmentName = "x", Type = CEType.MANAGED, ComputeResources = new() { Type = CRType.FARGATE, MaxvCpus = 4, InstanceTypes = ["m6i"] } }, "computeResources.instanceTypes is not allowed for a FARGATE compute environment" },
        { "fargate minvcpus", new() { ComputeEnvironmentName = "x", Type = CEType.MANAGED, ComputeResources = new() { Type = CRType.FARGATE_SPOT, MaxvCpus = 4, MinvCpus = 0 } }, "computeResources.minvCpus is not allowed for a FARGATE_SPOT compute environment" },
        { "fargate strategy", new() { ComputeEnvironmentName = "x", Type = CEType.MANAGED, ComputeResources = new() { Type = CRType.FARGATE, MaxvCpus = 4, AllocationStrategy = "BEST_FIT" } }, "computeResources.allocationStrategy is not allowed for a FARGATE compute environment" },
        { "spot strategy on ec2", new() { ComputeEnvironmentName = "x", Type = CEType.MANAGED, ComputeResources = new() { Type = CRType.EC2, MaxvCpus = 4, AllocationStrategy = CRAllocationStrategy.SPOT_CAPACITY_OPTIMIZED } }, "SPOT_CAPACITY_OPTIMIZED is for SPOT compute environments only" },
        { "ordered on spot", new() { ComputeEnvironmentName = "x", Type = CEType.MANAGED, ComputeResources = new() { Type = CRType.SPOT, MaxvCpus = 4, AllocationStrategy = CRAllocationStrategy.BEST_FIT_PROGRESSIVE_ORDERED } }, "BEST_FIT_PROGRESSIVE_ORDERED is for On-Demand (EC2) compute environments only" },
        { "spot best fit without fleet role", new() { ComputeEnvironmentName = "x", Type = CEType.MANAGED, ComputeResources = new() { Type = CRType.SPOT, MaxvCpus = 4, AllocationStrategy = CRAllocationStrategy.BEST_FIT } }, "computeResources.spotIamFleetRole is required for a SPOT compute environment with the BEST_FIT allocation strategy" },
        { "spot default strategy without fleet role", new() { ComputeEnvironmentName = "x", Type = CEType.MANAGED, ComputeResources = new() { Type = CRType.SPOT, MaxvCpus = 4 } }, "computeResources.spotIamFleetRole is required" },
        { "bid on ec2", new() { ComputeEnvironmentName = "x", Type = CEType.MANAGED, ComputeResources = new() { Type = CRType.EC2, MaxvCpus = 4, BidPercentage = 50 } }, "bidPercentage can only be set for a SPOT compute environment" },
        { "scale down delay", new() { ComputeEnvironmentName = "x", Type = CEType.MANAGED, ComputeResources = new() { Type = CRType.EC2, MaxvCpus = 4, ScalingPolicy = new() { MinScaleDownDelayMinutes = 5 } } }, "minScaleDownDelayMinutes must be between 20 and 10080, was 5" },
        { "duplicate", new() { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED }, "Object already exists: computeEnvironmentName ce" },
        { "bad host", new() { ComputeEnvironmentName = "x", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Vcpus = 0, MemoryMiB = 1024 }] }, "hosts[0].vcpus must be greater than 0, was 0" },
        { "unknown driver", new() { ComputeEnvironmentName = "x", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Vcpus = 1, MemoryMiB = 1024, Driver = "k8s" }] }, "hosts[0].driver k8s is not available" },
        { "null host", new() { ComputeEnvironmentName = "x", Type = CEType.UNMANAGED, Hosts = [null!] }, "hosts[0] must not be null" },
        { "infinite host vcpus", new() { ComputeEnvironmentName = "x", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Vcpus = double.PositiveInfinity, MemoryMiB = 1024 }] }, "hosts[0].vcpus must be at most 1000000" },
        { "host vcpus past int milli", new() { ComputeEnvironmentName = "x", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Vcpus = 3_000_000, MemoryMiB = 1024 }] }, "hosts[0].vcpus must be at most 1000000" },
        { "null instance type", new() { ComputeEnvironmentName = "x", Type = CEType.MANAGED, ComputeResources = new() { Type = CRType.EC2, MaxvCpus = 4, InstanceTypes = [null!] } }, "computeResources.instanceTypes[0] must be an instance type, was null" },
    };

    /// <summary>CreateComputeEnvironment's tag limit is Quotas.MaxTags, as for every other resource (it was a fixed 50).</summary>
    [Fact]
    public async Task CreateComputeEnvironment_TagLimit_IsTheQuota()
    {
        await using var engine = TestEngine.Create(new BatchEngineOptions { Quotas = new() { MaxTags = 5 } });
        var e = await Assert.ThrowsAsync<BatchClientException>(() => engine.CreateComputeEnvironmentAsync(new()
        {
            ComputeEnvironmentName = "ce",
            Type = CEType.UNMANAGED,
            Hosts = [new HostSpec { HostName = "h", Vcpus = 2, MemoryMiB = 8192 }],
            Tags = Enumerable.Range(0, 6).ToDictionary(i => $"k{i}", i => "v"),
        }));
        Assert.Contains("Member must have length less than or equal to 5, had 6", e.Message, StringComparison.Ordinal);
        Assert.Empty((await engine.DescribeComputeEnvironmentsAsync()).ComputeEnvironments);
    }

    [Theory]
    [MemberData(nameof(BadComputeEnvironments))]
    public async Task CreateComputeEnvironment_RejectsBadInput(string rule, CreateComputeEnvironmentRequest request, string expected)
    {
        _ = rule;
        await Rejects(engine => engine.CreateComputeEnvironmentAsync(request), expected);
    }

    [Fact]
    public async Task CreateJobQueue_Rules()
    {
        await Rejects(e => e.CreateJobQueueAsync(new() { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] }), "Job queue q already exists");
        await Rejects(e => e.CreateJobQueueAsync(new() { JobQueueName = "q2", Priority = 1, ComputeEnvironmentOrder = [] }), "At least 1 compute environment must be provided");
        await Rejects(e => e.CreateJobQueueAsync(new() { JobQueueName = "q2", Priority = 1, State = "JUNK", ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] }), "state must be one of ENABLED | DISABLED, was JUNK");
        await Rejects(e => e.CreateJobQueueAsync(new() { JobQueueName = "q2", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "arn:aws:batch:local:000000000000:compute-environment/none" }] }), "computeEnvironmentOrder is malformed");
        await Rejects(e => e.CreateJobQueueAsync(new() { JobQueueName = "q2", ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] }), "priority is required");
        await Rejects(e => e.CreateJobQueueAsync(new()
        {
            JobQueueName = "q2",
            Priority = 1,
            ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }],
            JobStateTimeLimitActions = [new() { Reason = "r", State = "RUNNABLE", Action = "CANCEL", MaxTimeSeconds = 100 }],
        }), "jobStateTimeLimitActions[0].maxTimeSeconds must be between 600 and 86400, was 100");
        await Rejects(e => e.CreateJobQueueAsync(new() { JobQueueName = "q2", Priority = 1, ComputeEnvironmentOrder = [null!] }), "computeEnvironmentOrder[0] must not be null");
        await Rejects(e => e.CreateJobQueueAsync(new()
        {
            JobQueueName = "q2",
            Priority = 1,
            ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }],
            JobStateTimeLimitActions = [null!],
        }), "jobStateTimeLimitActions[0] must not be null");
    }

    /// <summary>A null entry of UpdateJobQueue's lists is refused (it threw NullReferenceException), and nothing else of the update is applied.</summary>
    [Fact]
    public async Task UpdateJobQueue_NullEntries_AreRefused_NothingApplied()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        var e = await Assert.ThrowsAsync<BatchClientException>(() => engine.UpdateJobQueueAsync(new() { JobQueue = "q", Priority = 7, ComputeEnvironmentOrder = [null!] }));
        Assert.Contains("computeEnvironmentOrder[0] must not be null", e.Message, StringComparison.Ordinal);
        e = await Assert.ThrowsAsync<BatchClientException>(() => engine.UpdateJobQueueAsync(new() { JobQueue = "q", Priority = 7, JobStateTimeLimitActions = [null!] }));
        Assert.Contains("jobStateTimeLimitActions[0] must not be null", e.Message, StringComparison.Ordinal);
        Assert.Equal(1, (await engine.DescribeJobQueuesAsync()).JobQueues[0].Priority);
    }

    /// <summary>A null filter, filter value or name to describe is refused naming it (ListJobs took a null filter as none, and a null value threw).</summary>
    [Fact]
    public async Task ListAndDescribe_NullEntries_AreRefused()
    {
        await Rejects(e => e.ListJobsAsync(new() { JobQueue = "q", Filters = [null!] }), "filters[0] must not be null");
        await Rejects(e => e.ListJobsAsync(new() { JobQueue = "q", Filters = [new() { Name = "JOB_NAME", Values = [null!] }] }), "filters[0].values[0] must not be null");
        await Rejects(e => e.ListJobsAsync(new() { JobQueue = "q", Filters = [new() { Name = "JOB_DEFINITION", Values = [null!] }] }), "filters[0].values[0] must not be null");
        await Rejects(e => e.DescribeComputeEnvironmentsAsync(new() { ComputeEnvironments = [null!] }), "computeEnvironments[0] must be a name or an ARN, was null");
        await Rejects(e => e.DescribeJobQueuesAsync(new() { JobQueues = [null!] }), "jobQueues[0] must be a name or an ARN, was null");
        await Rejects(e => e.DescribeJobDefinitionsAsync(new() { JobDefinitions = [null!] }), "jobDefinitions[0] must be a name or an ARN, was null");
        await Rejects(e => e.DescribeSchedulingPoliciesAsync([null!]), "arns[0] must be a name or an ARN, was null");
    }

    /// <summary>
    /// AWS reserves the aws: prefix, in any case, for keys and values ("Tag restrictions"); every call that takes tags
    /// accepted it. Refused naming the field, and nothing of the request applied.
    /// </summary>
    [Fact]
    public async Task Tags_WithTheReservedAwsPrefix_AreRefusedWhereverTagsAreGiven()
    {
        const string Rule = "must not start with 'aws:' (reserved for AWS's own tags, in any case)";
        var reservedKey = new Dictionary<string, string> { ["team"] = "a", ["AWS:owner"] = "me" };
        var reservedValue = new Dictionary<string, string> { ["owner"] = "Aws:me" };
        await using var engine = await TestEngine.WithQueueAsync();
        var queueArn = (await engine.DescribeJobQueuesAsync()).JobQueues[0].JobQueueArn;

        async Task Refused(Func<Task> act, string field)
        {
            var e = await Assert.ThrowsAsync<BatchClientException>(act);
            Assert.Contains($"{field} ", e.Message, StringComparison.Ordinal);
            Assert.Contains(Rule, e.Message, StringComparison.Ordinal);
        }

        await Refused(() => engine.TagResourceAsync(queueArn, reservedKey), "tags keys");
        await Refused(() => engine.TagResourceAsync(queueArn, reservedValue), "tags.owner");
        Assert.Empty(await engine.ListTagsForResourceAsync(queueArn)); // not even "team"
        await Refused(() => engine.CreateJobQueueAsync(new() { JobQueueName = "q2", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }], Tags = reservedKey }), "tags keys");
        await Refused(() => engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "ce2", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h9", Vcpus = 1, MemoryMiB = 1024 }], Tags = reservedKey }), "tags keys");
        await Refused(() => engine.CreateSchedulingPolicyAsync(new() { Name = "p", Tags = reservedKey }), "tags keys");
        await Refused(() => engine.CreateConsumableResourceAsync(new() { ConsumableResourceName = "lic", TotalQuantity = 1, Tags = reservedValue }), "tags.owner");
        await Refused(() => engine.RegisterJobDefinitionAsync(TestEngine.Definition("def2") with { Tags = reservedKey }), "tags keys");
        await Refused(() => engine.SubmitJobAsync(TestEngine.Job() with { Tags = reservedKey }), "tags keys");
        var managed = TestEngine.ManagedEc2("m");
        await Refused(() => engine.CreateComputeEnvironmentAsync(managed with { ComputeResources = managed.ComputeResources! with { Tags = reservedKey } }), "computeResources.tags keys");

        Assert.Single((await engine.DescribeJobQueuesAsync()).JobQueues);
        Assert.Single((await engine.DescribeComputeEnvironmentsAsync()).ComputeEnvironments);
        Assert.Empty((await engine.ListSchedulingPoliciesAsync(new())).SchedulingPolicies);
        Assert.Empty((await engine.ListConsumableResourcesAsync(new())).ConsumableResources);
        Assert.Empty((await engine.DescribeJobDefinitionsAsync(new() { JobDefinitionName = "def2" })).JobDefinitions);

        await engine.CreateComputeEnvironmentAsync(managed);
        await Refused(() => engine.UpdateComputeEnvironmentAsync(new() { ComputeEnvironment = "m", ComputeResources = new() { Tags = reservedKey } }), "computeResources.tags keys");

        // Other tags, and a key that only contains the prefix, are fine.
        await engine.TagResourceAsync(queueArn, new Dictionary<string, string> { ["team:aws:x"] = "a-aws:b" });
        Assert.Equal("a-aws:b", (await engine.ListTagsForResourceAsync(queueArn))["team:aws:x"]);
    }

    /// <summary>
    /// An ARN of another region, account or partition names another engine's resource: it used to resolve to the local
    /// one of the same name (the ARN was stripped to its name whatever it said). Now it names nothing, and the error
    /// names the field; this engine's own ARNs still resolve.
    /// </summary>
    [Fact]
    public async Task ArnsOfAnotherRegionOrAccount_NameNothing()
    {
        await using var engine = await TestEngine.WithQueueAsync(options: new BatchEngineOptions { Region = "us-east-1", AccountId = "123456789012" });
        await engine.CreateConsumableResourceAsync(new() { ConsumableResourceName = "lic", TotalQuantity = 1 });
        await engine.CreateSchedulingPolicyAsync(new() { Name = "p" });
        const string Own = "arn:aws:batch:us-east-1:123456789012:";
        string[] others = ["arn:aws:batch:eu-west-1:999999999999:", "arn:aws:batch:eu-west-1:123456789012:", "arn:aws:batch:us-east-1:999999999999:", "arn:aws-cn:batch:us-east-1:123456789012:"];

        // This engine's ARNs resolve.
        var job = await engine.SubmitJobAsync(TestEngine.Job() with { JobQueue = Own + "job-queue/q", JobDefinition = Own + "job-definition/def:1" });
        await engine.TagResourceAsync(Own + "job-queue/q", new Dictionary<string, string> { ["k"] = "v" });
        Assert.Single((await engine.DescribeComputeEnvironmentsAsync(new() { ComputeEnvironments = [Own + "compute-environment/ce"] })).ComputeEnvironments);

        foreach (var other in others)
        {
            async Task Refused(Func<Task> act, string expected)
            {
                var e = await Assert.ThrowsAsync<BatchClientException>(act);
                Assert.Contains(expected, e.Message, StringComparison.Ordinal);
            }

            var queue = other + "job-queue/q";
            await Refused(() => engine.SubmitJobAsync(TestEngine.Job() with { JobQueue = queue }), $"jobQueue {queue} does not exist");
            await Refused(() => engine.SubmitJobAsync(TestEngine.Job() with { JobDefinition = other + "job-definition/def:1" }), $"jobDefinition {other}job-definition/def:1 does not exist");
            await Refused(() => engine.SubmitJobAsync(TestEngine.Job() with { ConsumableResourcePropertiesOverride = new() { ConsumableResourceList = [new() { ConsumableResource = other + "consumable-resource/lic", Quantity = 1 }] } }),
                $"consumableResourceProperties.consumableResourceList[0].consumableResource {other}consumable-resource/lic does not exist");
            await Refused(() => engine.RegisterJobDefinitionAsync(TestEngine.Definition("d2") with { ConsumableResourceProperties = new() { ConsumableResourceList = [new() { ConsumableResource = other + "consumable-resource/lic", Quantity = 1 }] } }),
                $"consumableResourceProperties.consumableResourceList[0].consumableResource must be a name or an ARN of this engine's region and account ({Own}consumable-resource/NAME), was {other}consumable-resource/lic");
            await Refused(() => engine.UpdateJobQueueAsync(new() { JobQueue = queue, Priority = 5 }), $"jobQueue {queue} does not exist");
            await Refused(() => engine.UpdateComputeEnvironmentAsync(new() { ComputeEnvironment = other + "compute-environment/ce", State = ResourceState.DISABLED }), $"computeEnvironment {other}compute-environment/ce does not exist");
            await Refused(() => engine.CreateJobQueueAsync(new() { JobQueueName = "q2", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = other + "compute-environment/ce" }] }),
                $"computeEnvironmentOrder is malformed: computeEnvironment {other}compute-environment/ce does not exist");
            await Refused(() => engine.CreateJobQueueAsync(new() { JobQueueName = "q3", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }], SchedulingPolicyArn = other + "scheduling-policy/p" }),
                $"schedulingPolicyArn does not name an existing scheduling policy: {other}scheduling-policy/p");
            await Refused(() => engine.UpdateConsumableResourceAsync(new() { ConsumableResource = other + "consumable-resource/lic", Operation = "SET", Quantity = 5 }), $"consumableResource {other}consumable-resource/lic does not exist");
            await Refused(() => engine.TagResourceAsync(queue, new Dictionary<string, string> { ["k"] = "w" }), $"resourceArn {queue} does not exist");
            await Refused(() => engine.ListTagsForResourceAsync(other + "job/" + job.JobId), $"resourceArn {other}job/{job.JobId} does not exist");
            await Refused(() => engine.DeleteJobQueueAsync(queue), $"jobQueue {queue} does not exist");
            Assert.Empty((await engine.DescribeComputeEnvironmentsAsync(new() { ComputeEnvironments = [other + "compute-environment/ce"] })).ComputeEnvironments);
            Assert.Empty((await engine.DescribeJobQueuesAsync(new() { JobQueues = [queue] })).JobQueues);
            Assert.Empty(await engine.DescribeSchedulingPoliciesAsync([other + "scheduling-policy/p"]));
        }

        // Nothing was applied to the local resources of the same names.
        Assert.Equal(1, Assert.Single((await engine.DescribeJobQueuesAsync()).JobQueues).Priority);
        Assert.Equal("v", (await engine.ListTagsForResourceAsync(Own + "job-queue/q"))["k"]);
        Assert.Equal(1, (await engine.DescribeConsumableResourceAsync("lic")).TotalQuantity);
        Assert.Equal(ResourceState.ENABLED, Assert.Single((await engine.DescribeComputeEnvironmentsAsync()).ComputeEnvironments).State);
    }

    /// <summary>UntagResource checks every key before removing any: ["a", null] removed a (unjournaled), then threw ArgumentNullException.</summary>
    [Fact]
    public async Task UntagResource_NullKey_IsRefused_NothingRemoved()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        var arn = (await engine.DescribeJobQueuesAsync()).JobQueues[0].JobQueueArn;
        await engine.TagResourceAsync(arn, new Dictionary<string, string> { ["a"] = "1" });
        var e = await Assert.ThrowsAsync<BatchClientException>(() => engine.UntagResourceAsync(arn, ["a", null!]));
        Assert.Contains("tagKeys[1] must be 1 to 128 characters, was null", e.Message, StringComparison.Ordinal);
        Assert.Equal("1", (await engine.ListTagsForResourceAsync(arn))["a"]);
    }

    /// <summary>
    /// A job naming one consumable resource twice (by name and by ARN) is refused: each entry was checked alone against
    /// the total, and both were taken (inUse 12 of 10).
    /// </summary>
    [Fact]
    public async Task SubmitJob_ConsumableByNameAndArn_IsRefused_NothingHeld()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        var arn = (await engine.CreateConsumableResourceAsync(new() { ConsumableResourceName = "lic", TotalQuantity = 10 })).ConsumableResourceArn;
        var e = await Assert.ThrowsAsync<BatchClientException>(() => engine.SubmitJobAsync(TestEngine.Job(runSeconds: 100) with
        {
            ConsumableResourcePropertiesOverride = new() { ConsumableResourceList = [new() { ConsumableResource = "lic", Quantity = 6 }, new() { ConsumableResource = arn, Quantity = 6 }] },
        }));
        Assert.Contains("consumableResourceList[1].consumableResource names consumable resource lic again (entry [0])", e.Message, StringComparison.Ordinal);
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        Assert.Equal(0, (await engine.DescribeConsumableResourceAsync("lic")).InUseQuantity);
    }

    [Fact]
    public async Task JobQueue_CannotMixEc2AndFargate()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "fg", Type = CEType.MANAGED, ComputeResources = new() { Type = CRType.FARGATE, MaxvCpus = 4 } });
        var e = await Assert.ThrowsAsync<BatchClientException>(() => engine.CreateJobQueueAsync(new()
        {
            JobQueueName = "mixed",
            Priority = 1,
            ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }, new() { Order = 2, ComputeEnvironment = "fg" }],
        }));
        Assert.Contains("cannot mix EC2/SPOT and FARGATE/FARGATE_SPOT", e.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// AWS jobQueueType: ECS takes EC2/Spot compute environments (and BatchCore's UNMANAGED hosts), ECS_FARGATE Fargate
    /// ones; left out, it is taken from the compute environments; EKS and SageMaker queues are refused; an update cannot
    /// move a queue to the other platform.
    /// </summary>
    [Fact]
    public async Task JobQueueType_MatchesItsComputeEnvironments()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "fg", Type = CEType.MANAGED, ComputeResources = new() { Type = CRType.FARGATE, MaxvCpus = 4 } });
        CreateJobQueueRequest Queue(string name, string ce, string? type) => new()
        {
            JobQueueName = name, Priority = 1, JobQueueType = type, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = ce }],
        };

        async Task Refused(Func<Task> act, string expected) =>
            Assert.Contains(expected, (await Assert.ThrowsAsync<BatchClientException>(act)).Message, StringComparison.Ordinal);

        await engine.CreateJobQueueAsync(Queue("ecs", "ce", JobQueueType.ECS));
        await engine.CreateJobQueueAsync(Queue("fargate", "fg", null));
        await Refused(() => engine.CreateJobQueueAsync(Queue("bad1", "fg", JobQueueType.ECS)), "compute environment fg is FARGATE, which a jobQueueType ECS job queue cannot use");
        await Refused(() => engine.CreateJobQueueAsync(Queue("bad2", "ce", JobQueueType.ECS_FARGATE)), "compute environment ce is EC2/SPOT, which a jobQueueType ECS_FARGATE job queue cannot use");
        await Refused(() => engine.CreateJobQueueAsync(Queue("bad3", "ce", JobQueueType.EKS)), "jobQueueType EKS job queues are not supported by BatchCore");
        await Refused(() => engine.CreateJobQueueAsync(Queue("bad4", "ce", "K8S")), "jobQueueType must be one of ECS | ECS_FARGATE | EKS | SAGEMAKER_TRAINING, was K8S");
        await Refused(() => engine.UpdateJobQueueAsync(new() { JobQueue = "ecs", ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "fg" }] }), "which a jobQueueType ECS job queue cannot use");

        var described = (await engine.DescribeJobQueuesAsync()).JobQueues.ToDictionary(q => q.JobQueueName, q => q.JobQueueType);
        Assert.Equal(JobQueueType.ECS, described["q"]);
        Assert.Equal(JobQueueType.ECS, described["ecs"]);
        Assert.Equal(JobQueueType.ECS_FARGATE, described["fargate"]);
        Assert.Equal(3, described.Count); // nothing of the refused ones was created
    }

    [Fact]
    public async Task FifoQueue_CannotGetAPolicyLater_AndPolicyCannotBeRemoved()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        var policy = await engine.CreateSchedulingPolicyAsync(new() { Name = "p" });
        var e = await Assert.ThrowsAsync<BatchClientException>(() => engine.UpdateJobQueueAsync(new() { JobQueue = "q", SchedulingPolicyArn = policy.Arn }));
        Assert.Contains("created without a scheduling policy", e.Message, StringComparison.Ordinal);

        await engine.CreateJobQueueAsync(new() { JobQueueName = "fs", Priority = 1, SchedulingPolicyArn = policy.Arn, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
        var p2 = await engine.CreateSchedulingPolicyAsync(new() { Name = "p2" });
        await engine.UpdateJobQueueAsync(new() { JobQueue = "fs", SchedulingPolicyArn = p2.Arn }); // replaced: fine
        e = await Assert.ThrowsAsync<BatchClientException>(() => engine.UpdateJobQueueAsync(new() { JobQueue = "fs", SchedulingPolicyArn = "" }));
        Assert.Contains("cannot be removed", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DeleteComputeEnvironment_MustBeDisabledAndInNoQueue()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        var e = await Assert.ThrowsAsync<BatchClientException>(() => engine.DeleteComputeEnvironmentAsync("ce"));
        Assert.Contains("must be DISABLED before it is deleted", e.Message, StringComparison.Ordinal);
        await engine.UpdateComputeEnvironmentAsync(new() { ComputeEnvironment = "ce", State = ResourceState.DISABLED });
        e = await Assert.ThrowsAsync<BatchClientException>(() => engine.DeleteComputeEnvironmentAsync("ce"));
        Assert.Contains("is in job queue q", e.Message, StringComparison.Ordinal);
        await engine.UpdateJobQueueAsync(new() { JobQueue = "q", State = ResourceState.DISABLED });
        await engine.DeleteJobQueueAsync("q");
        await engine.DeleteComputeEnvironmentAsync("ce");
        Assert.Empty((await engine.DescribeComputeEnvironmentsAsync()).ComputeEnvironments);
    }

    [Fact]
    public async Task UpdateComputeEnvironment_InfrastructureUpdateOnBestFit_IsRejected_AndNothingApplied()
    {
        await using var engine = TestEngine.Create();
        await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "m", Type = CEType.MANAGED, ComputeResources = new() { Type = CRType.EC2, MaxvCpus = 16, AllocationStrategy = CRAllocationStrategy.BEST_FIT } });
        var e = await Assert.ThrowsAsync<BatchClientException>(() => engine.UpdateComputeEnvironmentAsync(new() { ComputeEnvironment = "m", ComputeResources = new() { MaxvCpus = 32, InstanceTypes = ["c6i"] } }));
        Assert.Contains("not allowed on a BEST_FIT compute environment", e.Message, StringComparison.Ordinal);
        Assert.Equal(16, (await engine.DescribeComputeEnvironmentsAsync()).ComputeEnvironments.Single().ComputeResources!.MaxvCpus);
        await engine.UpdateComputeEnvironmentAsync(new() { ComputeEnvironment = "m", ComputeResources = new() { MaxvCpus = 32 } }); // scaling update
        Assert.Equal(32, (await engine.DescribeComputeEnvironmentsAsync()).ComputeEnvironments.Single().ComputeResources!.MaxvCpus);

        // Subnets and security groups are infrastructure too (AWS); on Fargate they are the only fields it may update.
        e = await Assert.ThrowsAsync<BatchClientException>(() => engine.UpdateComputeEnvironmentAsync(new() { ComputeEnvironment = "m", ComputeResources = new() { Subnets = ["subnet-2"] } }));
        Assert.Contains("subnets, securityGroupIds, tags, placementGroup, launchTemplate, ec2Configuration, updateToLatestImageVersion) are not allowed on a BEST_FIT compute environment", e.Message, StringComparison.Ordinal);
        await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "f", Type = CEType.MANAGED, ComputeResources = new() { Type = CRType.FARGATE, MaxvCpus = 16, Subnets = ["subnet-1"], SecurityGroupIds = ["sg-1"] } });
        await engine.UpdateComputeEnvironmentAsync(new() { ComputeEnvironment = "f", ComputeResources = new() { Subnets = ["subnet-2"], SecurityGroupIds = ["sg-2"] } });
    }

    /// <summary>
    /// An update is held to the creation rules for what it leaves: a SPOT strategy or a bidPercentage on an EC2
    /// environment, BEST_FIT_PROGRESSIVE_ORDERED turned SPOT, a scaling policy on Fargate, unmanagedvCpus on a managed
    /// or negative — each refused, nothing applied.
    /// </summary>
    [Fact]
    public async Task UpdateComputeEnvironment_KeepsTheCreationRules()
    {
        await using var engine = TestEngine.Create();
        await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "ec2", Type = CEType.MANAGED, ComputeResources = new() { Type = CRType.EC2, MaxvCpus = 16, AllocationStrategy = CRAllocationStrategy.BEST_FIT_PROGRESSIVE_ORDERED, InstanceRole = "ecsInstanceRole", Subnets = ["subnet-1"], SecurityGroupIds = ["sg-1"] } });
        await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "f", Type = CEType.MANAGED, ComputeResources = new() { Type = CRType.FARGATE, MaxvCpus = 16, Subnets = ["subnet-1"], SecurityGroupIds = ["sg-1"] } });
        await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "u", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Vcpus = 2, MemoryMiB = 4096 }] });
        async Task Refused(UpdateComputeEnvironmentRequest update, string expected) =>
            Assert.Contains(expected, (await Assert.ThrowsAsync<BatchClientException>(() => engine.UpdateComputeEnvironmentAsync(update))).Message, StringComparison.Ordinal);

        await Refused(new() { ComputeEnvironment = "ec2", ComputeResources = new() { AllocationStrategy = CRAllocationStrategy.SPOT_CAPACITY_OPTIMIZED } }, "SPOT_CAPACITY_OPTIMIZED is for SPOT compute environments only");
        await Refused(new() { ComputeEnvironment = "ec2", ComputeResources = new() { BidPercentage = 50 } }, "bidPercentage can only be set for a SPOT compute environment");
        await Refused(new() { ComputeEnvironment = "ec2", ComputeResources = new() { Type = CRType.SPOT } }, "BEST_FIT_PROGRESSIVE_ORDERED is for On-Demand (EC2) compute environments only");
        await Refused(new() { ComputeEnvironment = "f", ComputeResources = new() { ScalingPolicy = new() { MinScaleDownDelayMinutes = 30 } } }, "can only update maxvCpus, subnets and securityGroupIds");
        await Refused(new() { ComputeEnvironment = "ec2", UnmanagedvCpus = 4 }, "unmanagedvCpus can only be set for an UNMANAGED compute environment");
        await Refused(new() { ComputeEnvironment = "u", UnmanagedvCpus = -5 }, "unmanagedvCpus must be between 0 and");

        var ec2 = (await engine.DescribeComputeEnvironmentsAsync(new() { ComputeEnvironments = ["ec2"] })).ComputeEnvironments.Single().ComputeResources!;
        Assert.Equal((CRType.EC2, CRAllocationStrategy.BEST_FIT_PROGRESSIVE_ORDERED, (int?)null), (ec2.Type, ec2.AllocationStrategy, ec2.BidPercentage));
        await engine.UpdateComputeEnvironmentAsync(new() { ComputeEnvironment = "ec2", ComputeResources = new() { Type = CRType.SPOT, AllocationStrategy = CRAllocationStrategy.SPOT_CAPACITY_OPTIMIZED, BidPercentage = 60 } });
        await engine.UpdateComputeEnvironmentAsync(new() { ComputeEnvironment = "ec2", ComputeResources = new() { MaxvCpus = 32 } }); // unrelated: no re-check
        await engine.UpdateComputeEnvironmentAsync(new() { ComputeEnvironment = "u", UnmanagedvCpus = 2 });

        // Back to EC2: the stored bid cannot be cleared through the API, so the change to EC2 drops it.
        await engine.UpdateComputeEnvironmentAsync(new() { ComputeEnvironment = "ec2", ComputeResources = new() { Type = CRType.EC2, AllocationStrategy = CRAllocationStrategy.BEST_FIT_PROGRESSIVE } });
        ec2 = (await engine.DescribeComputeEnvironmentsAsync(new() { ComputeEnvironments = ["ec2"] })).ComputeEnvironments.Single().ComputeResources!;
        Assert.Equal((CRType.EC2, (int?)null), (ec2.Type, ec2.BidPercentage));
    }

    [Fact]
    public async Task SchedulingPolicy_Rules()
    {
        await Rejects(e => e.CreateSchedulingPolicyAsync(new() { Name = "p", FairsharePolicy = new() { ComputeReservation = 100 } }), "fairsharePolicy.computeReservation must be between 0 and 99, was 100");
        await Rejects(e => e.CreateSchedulingPolicyAsync(new() { Name = "p", FairsharePolicy = new() { ShareDecaySeconds = 604_801 } }), "fairsharePolicy.shareDecaySeconds must be between 0 and 604800");
        await Rejects(e => e.CreateSchedulingPolicyAsync(new() { Name = "p", FairsharePolicy = new() { ShareDistribution = [new() { ShareIdentifier = "a*", WeightFactor = 1 }, new() { ShareIdentifier = "ab", WeightFactor = 2 }] } }), "ab overlaps a*");
        await Rejects(e => e.CreateSchedulingPolicyAsync(new() { Name = "p", FairsharePolicy = new() { ShareDistribution = [new() { ShareIdentifier = "a", WeightFactor = 1000 }] } }), "weightFactor must be between 0.0001 and 999.9999");
        await Rejects(e => e.CreateSchedulingPolicyAsync(new() { Name = "p", FairsharePolicy = new() { ShareDistribution = [new() { ShareIdentifier = "a*b", WeightFactor = 1 }] } }), "may contain * only as its last character");
        // AWS ShareAttributes: up to 255 alphanumeric characters, optionally followed by *.
        await Rejects(e => e.CreateSchedulingPolicyAsync(new() { Name = "p", FairsharePolicy = new() { ShareDistribution = [new() { ShareIdentifier = "team a/b", WeightFactor = 1 }] } }), "fairsharePolicy.shareDistribution[0].shareIdentifier may contain only letters and digits, optionally followed by *, was 'team a/b'");
        await Rejects(e => e.CreateSchedulingPolicyAsync(new() { Name = "p", FairsharePolicy = new() { ShareDistribution = null! } }), "fairsharePolicy.shareDistribution must not be null");
        await Rejects(e => e.CreateSchedulingPolicyAsync(new() { Name = "p", FairsharePolicy = new() { ShareDistribution = [null!] } }), "fairsharePolicy.shareDistribution[0] must not be null");
    }

    [Fact]
    public async Task DefaultSchedulingPolicy_IsEmptyFairshare()
    {
        await using var engine = TestEngine.Create();
        var p = await engine.CreateSchedulingPolicyAsync(new() { Name = "p" });
        Assert.Equal("arn:aws:batch:local:000000000000:scheduling-policy/p", p.Arn);
        var d = (await engine.DescribeSchedulingPoliciesAsync([p.Arn])).Single();
        Assert.Equal(0, d.FairsharePolicy.ComputeReservation);
        Assert.Equal(0, d.FairsharePolicy.ShareDecaySeconds);
        Assert.Empty(d.FairsharePolicy.ShareDistribution);
        Assert.Empty(d.Tags);
    }

    [Fact]
    public async Task ConsumableResource_Rules()
    {
        await Rejects(e => e.CreateConsumableResourceAsync(new() { ConsumableResourceName = "c" }), "totalQuantity is required");
        await Rejects(e => e.CreateConsumableResourceAsync(new() { ConsumableResourceName = "c", TotalQuantity = 1, ResourceType = "FOREVER" }), "resourceType must be one of REPLENISHABLE | NON_REPLENISHABLE");
    }

    /// <summary>The cap CreateConsumableResource puts on totalQuantity (long.MaxValue / 2) holds for an ADD's result: it could pass it, then overflow.</summary>
    [Fact]
    public async Task UpdateConsumableResource_Add_CannotPassTheCap()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        await engine.CreateConsumableResourceAsync(new() { ConsumableResourceName = "lic", TotalQuantity = long.MaxValue / 2 });
        var e = await Assert.ThrowsAsync<BatchClientException>(() => engine.UpdateConsumableResourceAsync(new() { ConsumableResource = "lic", Operation = "ADD", Quantity = 10 }));
        Assert.Contains("quantity: adding 10 to totalQuantity 4611686018427387903 would make it 4611686018427387913, above the maximum 4611686018427387903", e.Message, StringComparison.Ordinal);
        Assert.Equal(long.MaxValue / 2, (await engine.DescribeConsumableResourceAsync("lic")).TotalQuantity);
    }

    [Fact]
    public void EngineOptions_AreValidated()
    {
        var e = Assert.Throws<BatchClientException>(() => new BatchEngine(new BatchEngineOptions { RequestQueueCapacity = 0 }));
        Assert.Contains("options.requestQueueCapacity must be between 1", e.Message, StringComparison.Ordinal);
    }

    /// <summary>A null command argument (YAML <c>~</c>, JSON <c>null</c>) is refused naming its index; it crashed SubmitJob with a NullReferenceException.</summary>
    [Fact]
    public async Task NullCommandArguments_AreRefused_NamingTheIndex()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        var ct = TestContext.Current.CancellationToken;
        var def = TestEngine.Definition("nulls");
        var e = await Assert.ThrowsAsync<BatchClientException>(() => engine.RegisterJobDefinitionAsync(def with { ContainerProperties = def.ContainerProperties! with { Command = ["echo", null!] } }, ct));
        Assert.Contains("containerProperties.command[1] must be a string, was null", e.Message, StringComparison.Ordinal);

        e = await Assert.ThrowsAsync<BatchClientException>(() => engine.SubmitJobAsync(TestEngine.Job() with { ContainerOverrides = new() { Command = [null!, "x"] } }, ct));
        Assert.Contains("containerOverrides.command[0] must be a string, was null", e.Message, StringComparison.Ordinal);
    }
}

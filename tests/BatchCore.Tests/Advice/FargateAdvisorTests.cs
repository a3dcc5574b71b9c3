using BatchCore.Advice;
using BatchCore.Model;

namespace BatchCore.Tests.Advice;

public sealed class FargateAdvisorTests
{
    private static RegisterJobDefinitionRequest Def(string vcpus = "1", string memory = "2048", string? gpus = null,
        Func<ContainerProperties, ContainerProperties>? edit = null, string? type = null, JobTimeout? timeout = null,
        IReadOnlyList<string>? platforms = null)
    {
        var reqs = new List<ResourceRequirement> { new(ResourceType.VCPU, vcpus), new(ResourceType.MEMORY, memory) };
        if (gpus is not null)
        {
            reqs.Add(new(ResourceType.GPU, gpus));
        }

        var c = new ContainerProperties { Command = ["true"], ResourceRequirements = reqs };
        return new RegisterJobDefinitionRequest
        {
            JobDefinitionName = "d",
            Type = type ?? JobDefinitionType.container,
            ContainerProperties = edit is null ? c : edit(c),
            Timeout = timeout,
            PlatformCapabilities = platforms,
        };
    }

    [Fact]
    public void Advise_SmallJob_Fargate()
    {
        var a = FargateAdvisor.Advise(Def(), 10);

        Assert.Equal("FARGATE", a.Platform);
        Assert.Contains(a.Reasons, r => r.Contains("no capacity to manage"));
        Assert.Contains(a.Reasons, r => r.Contains("30 s"));
    }

    [Fact]
    public void Advise_MoreThan16Vcpus_Ec2_MentionsOldGuidance()
    {
        var a = FargateAdvisor.Advise(Def(vcpus: "32", memory: "65536"), 1);

        Assert.Equal("EC2", a.Platform);
        var r = Assert.Single(a.Reasons);
        Assert.Contains("32 vCPUs", r);
        Assert.Contains("4 vCPUs and 30 GiB", r);
    }

    [Fact]
    public void Advise_MoreThan120GiB_Ec2()
    {
        var a = FargateAdvisor.Advise(Def(vcpus: "16", memory: "131072"), 1);

        Assert.Equal("EC2", a.Platform);
        Assert.Contains(a.Reasons, r => r.Contains("131072 MiB") && r.Contains("120 GiB"));
    }

    [Fact]
    public void Advise_Between4And16Vcpus_FargateWithOldGuidanceNote()
    {
        var a = FargateAdvisor.Advise(Def(vcpus: "8", memory: "32768"), 1);

        Assert.Equal("FARGATE", a.Platform);
        Assert.Contains(a.Reasons, r => r.Contains("4 vCPUs and 30 GiB"));
    }

    [Fact]
    public void Advise_Gpu_Ec2()
    {
        var a = FargateAdvisor.Advise(Def(gpus: "1"), 1);

        Assert.Equal("EC2", a.Platform);
        Assert.Contains(a.Reasons, r => r.Contains("GPU"));
    }

    [Fact]
    public void Advise_Arm64_Ec2()
    {
        var a = FargateAdvisor.Advise(Def(edit: c => c with { RuntimePlatform = new RuntimePlatform { CpuArchitecture = "ARM64" } }), 1);

        Assert.Equal("EC2", a.Platform);
        Assert.Contains(a.Reasons, r => r.Contains("ARM64"));
    }

    [Fact]
    public void Advise_Privileged_Ec2()
    {
        var a = FargateAdvisor.Advise(Def(edit: c => c with { Privileged = true }), 1);

        Assert.Equal("EC2", a.Platform);
        Assert.Contains(a.Reasons, r => r.Contains("privileged"));
    }

    [Fact]
    public void Advise_EveryLinuxParameter_Ec2_OneReasonEach()
    {
        var a = FargateAdvisor.Advise(Def(edit: c => c with
        {
            LinuxParameters = new LinuxParameters
            {
                Devices = [new Device { HostPath = "/dev/fuse" }],
                Tmpfs = [new Tmpfs { ContainerPath = "/scratch", Size = 64 }],
                MaxSwap = 1024,
                SharedMemorySize = 256,
            },
        }), 1);

        Assert.Equal("EC2", a.Platform);
        Assert.Contains(a.Reasons, r => r.Contains("devices"));
        Assert.Contains(a.Reasons, r => r.Contains("tmpfs"));
        Assert.Contains(a.Reasons, r => r.Contains("swap"));
        Assert.Contains(a.Reasons, r => r.Contains("sharedMemorySize"));
    }

    [Fact]
    public void Advise_InitProcessOnly_StaysFargate()
    {
        var a = FargateAdvisor.Advise(Def(edit: c => c with { LinuxParameters = new LinuxParameters { InitProcessEnabled = true } }), 1);

        Assert.Equal("FARGATE", a.Platform);
    }

    [Theory]
    [InlineData(9_999, "FARGATE")]
    [InlineData(10_000, "EC2")]
    public void Advise_ManyJobs_Ec2FromThreshold(int jobs, string expected)
    {
        var a = FargateAdvisor.Advise(Def(), jobs);

        Assert.Equal(expected, a.Platform);
        if (expected == "EC2")
        {
            Assert.Contains(a.Reasons, r => r.Contains("dispatches"));
        }
    }

    [Fact]
    public void Advise_Multinode_Ec2()
    {
        var a = FargateAdvisor.Advise(Def(type: JobDefinitionType.multinode), 1);

        Assert.Equal("EC2", a.Platform);
        Assert.Contains(a.Reasons, r => r.Contains("multi-node"));
    }

    [Fact]
    public void Advise_TimeoutBeyond14Days_Ec2()
    {
        var a = FargateAdvisor.Advise(Def(timeout: new JobTimeout { AttemptDurationSeconds = 15 * 24 * 3600 }), 1);

        Assert.Equal("EC2", a.Platform);
        Assert.Contains(a.Reasons, r => r.Contains("14 days"));
    }

    [Fact]
    public void Advise_SeveralBlockers_ListsEveryReason()
    {
        var a = FargateAdvisor.Advise(Def(vcpus: "64", memory: "262144", gpus: "4", edit: c => c with { Privileged = true }), 20_000);

        Assert.Equal("EC2", a.Platform);
        Assert.Equal(5, a.Reasons.Count);
    }

    [Fact]
    public void Advise_FargateDefinitionNeedingEc2_SaysSo()
    {
        var a = FargateAdvisor.Advise(Def(gpus: "1", platforms: ["FARGATE"]), 1);

        Assert.Equal("EC2", a.Platform);
        Assert.Contains(a.Reasons, r => r.Contains("platformCapabilities FARGATE"));
    }

    [Fact]
    public void Advise_NotAFargateSize_NamesTheSizeItWouldGet()
    {
        var a = FargateAdvisor.Advise(Def(vcpus: "1", memory: "512"), 1);

        Assert.Equal("FARGATE", a.Platform);
        Assert.Contains(a.Reasons, r => r.Contains("1 vCPUs / 2048 MiB"));
    }

    [Fact]
    public void Advise_LegacyVcpusAndMemoryFields_AreRead()
    {
        var req = new RegisterJobDefinitionRequest
        {
            JobDefinitionName = "legacy",
            Type = JobDefinitionType.container,
            ContainerProperties = new ContainerProperties { Command = ["true"], Vcpus = 32, Memory = 4096 },
        };

        Assert.Equal("EC2", FargateAdvisor.Advise(req, 1).Platform);
    }

    [Fact]
    public async Task Advise_RegisteredDefinition_SameAsRequest()
    {
        await using var engine = TestEngine.Create();
        await engine.RegisterJobDefinitionAsync(Def(gpus: "1") with { JobDefinitionName = "gpu" });
        var def = (await engine.DescribeJobDefinitionsAsync(new DescribeJobDefinitionsRequest { JobDefinitionName = "gpu" })).JobDefinitions.Single();

        Assert.Equal(FargateAdvisor.Advise(Def(gpus: "1"), 1), FargateAdvisor.Advise(def, 1), new AdviceComparer());
    }

    [Fact]
    public void Advise_NegativeCount_Throws() =>
        Assert.Throws<BatchClientException>(() => FargateAdvisor.Advise(Def(), -1));

    private sealed class AdviceComparer : IEqualityComparer<AdviceResult>
    {
        public bool Equals(AdviceResult? x, AdviceResult? y) => x!.Platform == y!.Platform && x.Reasons.SequenceEqual(y.Reasons);

        public int GetHashCode(AdviceResult obj) => obj.Platform.GetHashCode();
    }
}

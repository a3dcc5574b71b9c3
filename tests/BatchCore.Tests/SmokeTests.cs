namespace BatchCore.Tests;

public class SmokeTests
{
    [Fact]
    public void Builds() => Assert.True(true);

    [FsCheck.Xunit.Property]
    public bool AdditionCommutes(int a, int b) => a + b == b + a;
}
